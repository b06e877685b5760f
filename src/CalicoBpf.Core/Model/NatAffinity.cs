namespace CalicoBpf;

/// <summary>A session-affinity entry: which backend a client sticks to for a service.</summary>
public sealed class NatAffinity
{
    public string Node { get; init; } = string.Empty;
    public string ServiceAddress => ServiceAddressValue.ToString();
    /// <summary>ServiceAddress typed; PowerShell shows it as the hidden property ServiceAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress ServiceAddressValue { get; init; } = IPAddress.Any;
    public int ServicePort { get; init; }
    public IpProtocol Protocol { get; init; }
    public string ClientAddress => ClientAddressValue.ToString();
    /// <summary>ClientAddress typed; PowerShell shows it as the hidden property ClientAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress ClientAddressValue { get; init; } = IPAddress.Any;
    public string BackendAddress => BackendAddressValue.ToString();
    /// <summary>BackendAddress typed; PowerShell shows it as the hidden property BackendAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress BackendAddressValue { get; init; } = IPAddress.Any;
    public int BackendPort { get; init; }

    /// <summary>The service as host:port (IPv6 in brackets), as ConntrackEntry.ServiceEndpoint.</summary>
    public string ServiceEndpoint => ConntrackText.HostPort(ServiceAddressValue, ServicePort);

    /// <summary>The backend as host:port (IPv6 in brackets).</summary>
    public string Backend => ConntrackText.HostPort(BackendAddressValue, BackendPort);
    /// <summary>When the affinity was created or last refreshed (UTC).</summary>
    public DateTime LastRefreshed { get; init; }
    public string Age => AgeValue.ToString("c", CultureInfo.InvariantCulture);
    /// <summary>Age typed; PowerShell shows it as the hidden property AgeValue (CalicoBpf.Types.ps1xml).</summary>
    internal TimeSpan AgeValue { get; init; }
    /// <summary>Raw ts: CLOCK_MONOTONIC nanoseconds (what calico-bpf nat aff prints as a duration).</summary>
    public ulong TimestampNanoseconds { get; init; }
}
