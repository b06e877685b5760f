namespace CalicoBpf;

/// <summary>One slot of a service's Maglev lookup table.</summary>
public sealed class MaglevEntry
{
    public string Node { get; init; } = string.Empty;
    public uint ServiceId { get; init; }
    public int Ordinal { get; init; }
    public IPAddress BackendAddress { get; init; } = IPAddress.Any;
    public int BackendPort { get; init; }

    /// <summary>The backend as host:port (IPv6 in brackets).</summary>
    public string Backend => ConntrackText.HostPort(BackendAddress, BackendPort);
}
