namespace CalicoBpf.Flow;

/// <summary>One Felix setting a prediction needs that no map holds: its value and where it comes from ("FelixConfiguration default", "Felix's default in v3.30").</summary>
public sealed record FlowSetting(string Field, string Value, string Source)
{
    public override string ToString() => $"{Field} {Value} ({Source})";
}

/// <summary>
/// The Felix settings that decide a flow but live in no map: compiled into the programs Felix
/// loads (defaultEndpointToHostAction: the from-workload object with "host_drop" in its name) or
/// applied elsewhere (the connect-time load balancer in the cgroup programs). Read from what Felix
/// on the node uses (Get-FelixBpfConfig -Effective); each is null when the node's configuration
/// could not be read (local mode without a cluster), and the prediction then says so.
/// </summary>
public sealed record FlowSettings(FlowSetting? EndpointToHostAction, FlowSetting? ConnectTimeLoadBalancing)
{
    /// <summary>Nothing known: predictions that need a setting are Unknown and say which.</summary>
    public static FlowSettings Unknown { get; } = new(null, null);

    /// <summary>From Felix's effective values on a node (one per field).</summary>
    public static FlowSettings From(IEnumerable<FelixEffectiveValue> values)
    {
        var byField = values.GroupBy(v => v.Field, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        FlowSetting? Get(string field) => byField.TryGetValue(field, out FelixEffectiveValue? v) && v.Value.Length > 0
            ? new FlowSetting(field, v.Value, v.SourceDetail)
            : null;

        // Felix itself ignores the deprecated bpfConnectTimeLoadBalancingEnabled: Calico's client converts it
        // into bpfConnectTimeLoadBalancing when a FelixConfiguration is written.
        return new FlowSettings(Get("defaultEndpointToHostAction"), Get("bpfConnectTimeLoadBalancing"));
    }

    /// <summary>What the from-workload program does with traffic to this host after policy allowed it: "drop", "accept", "return"; null: unknown.</summary>
    public string? ToHost => EndpointToHostAction?.Value.ToLowerInvariant() switch
    {
        "drop" => "drop",
        "accept" => "accept",
        "return" => "return",
        _ => null,
    };

    /// <summary>
    /// Whether the connect-time load balancer picks a service's backend at connect() for a protocol:
    /// bpfConnectTimeLoadBalancing TCP (the default) for TCP only, Enabled for TCP and UDP, Disabled
    /// for none (felix/dataplane/linux/bpf_ep_mgr.go and felix/bpf/nat/connecttime.go at v3.30.7); null: unknown.
    /// </summary>
    public bool? ConnectTimeFor(IpProtocol protocol) => ConnectTimeLoadBalancing?.Value.ToLowerInvariant() switch
    {
        "tcp" => protocol == IpProtocol.Tcp,
        "enabled" => protocol is IpProtocol.Tcp or IpProtocol.Udp,
        "disabled" => false,
        _ => null,
    };
}
