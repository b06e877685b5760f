namespace CalicoBpf;

/// <summary>A session-affinity entry: which backend a client sticks to for a service.</summary>
public sealed class NatAffinity
{
    public string Node { get; init; } = string.Empty;
    public IPAddress ServiceAddress { get; init; } = IPAddress.Any;
    public int ServicePort { get; init; }
    public IpProtocol Protocol { get; init; }
    public IPAddress ClientAddress { get; init; } = IPAddress.Any;
    public IPAddress BackendAddress { get; init; } = IPAddress.Any;
    public int BackendPort { get; init; }

    /// <summary>The service as host:port (IPv6 in brackets), as ConntrackEntry.ServiceEndpoint.</summary>
    public string ServiceEndpoint => ConntrackText.HostPort(ServiceAddress, ServicePort);

    /// <summary>The backend as host:port (IPv6 in brackets).</summary>
    public string Backend => ConntrackText.HostPort(BackendAddress, BackendPort);
    /// <summary>When the affinity was created or last refreshed (UTC).</summary>
    public DateTime LastRefreshed { get; init; }
    public TimeSpan Age { get; init; }
    /// <summary>Raw ts: CLOCK_MONOTONIC nanoseconds (what calico-bpf nat aff prints as a duration).</summary>
    public ulong TimestampNanoseconds { get; init; }
}
