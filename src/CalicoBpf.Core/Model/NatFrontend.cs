namespace CalicoBpf;

/// <summary>A service frontend: one (address, port, protocol[, source CIDR]) key of the NAT frontend map, with its backends.</summary>
public sealed class NatFrontend
{
    public string Node { get; init; } = string.Empty;
    /// <summary>The service IP; 255.255.255.255 (or all-ones IPv6) is the wildcard NodePort entry.</summary>
    public string Address => AddressValue.ToString();
    /// <summary>Address typed; PowerShell shows it as the hidden property AddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress AddressValue { get; init; } = IPAddress.Any;
    public int Port { get; init; }
    public IpProtocol Protocol { get; init; }
    /// <summary>The LoadBalancerSourceRanges CIDR this entry admits; null for an ordinary entry.</summary>
    public string? SourceCidr { get; init; }
    /// <summary>The service id: the key of the backend map; ClusterIP, NodePort and LB frontends of one service share it.</summary>
    public uint ServiceId { get; init; }
    /// <summary>Number of backends; -1 on a drop entry (traffic from outside the source ranges).</summary>
    public int BackendCount { get; init; }
    public int LocalBackendCount { get; init; }
    public string AffinityTimeout => AffinityTimeoutValue.ToString("c", CultureInfo.InvariantCulture);
    /// <summary>AffinityTimeout typed; PowerShell shows it as the hidden property AffinityTimeoutValue (CalicoBpf.Types.ps1xml).</summary>
    internal TimeSpan AffinityTimeoutValue { get; init; }
    public NatFrontendFlags Flags { get; init; }
    public ValueList<NatBackend> Backends { get; init; } = ValueList<NatBackend>.Empty;

    /// <summary>-Resolve: "namespace/name" of the Kubernetes service with this frontend (empty when none).</summary>
    public string Service { get; set; } = string.Empty;
    public string MapName { get; init; } = string.Empty;

    /// <summary>
    /// Calico's drop entry (count 0xffffffff, BlackHoleCount in felix/bpf/nat/maps.go): the frontend
    /// of a LoadBalancer's source ranges that drops clients outside them. calico-bpf prints its count
    /// as -1; here BackendCount is 0, as it has no backends.
    /// </summary>
    public bool IsDropEntry { get; init; }
    public bool IsNodePortWildcard => AddressValue.GetAddressBytes().All(b => b == 0xff);
    public int MissingBackendCount => Backends.Count(b => b.Missing);
    public string Frontend => ConntrackText.HostPort(AddressValue, Port);

    public override string ToString() =>
        $"{AddressValue} port {Port} proto {(byte)Protocol} id {ServiceId} count {BackendCount} local {LocalBackendCount}" +
        (Flags != NatFrontendFlags.None ? " flags " + Flags : string.Empty) + (SourceCidr is null ? string.Empty : " src " + SourceCidr);
}
