namespace CalicoBpf;

/// <summary>One slot of a service's Maglev lookup table.</summary>
public sealed class MaglevEntry
{
    public string Node { get; init; } = string.Empty;
    public uint ServiceId { get; init; }
    public int Ordinal { get; init; }
    public string BackendAddress => BackendAddressValue.ToString();
    /// <summary>BackendAddress typed; PowerShell shows it as the hidden property BackendAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress BackendAddressValue { get; init; } = IPAddress.Any;
    public int BackendPort { get; init; }

    /// <summary>The backend as host:port (IPv6 in brackets).</summary>
    public string Backend => ConntrackText.HostPort(BackendAddressValue, BackendPort);
}
