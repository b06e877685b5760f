namespace CalicoBpf.Flow;

/// <summary>One Felix setting a prediction needs that no map holds: its value and where it comes from ("FelixConfiguration default", "Felix's default in v3.30").</summary>
public sealed record FlowSetting(string Field, string Value, string Source)
{
    public override string ToString() => $"{Field} {Value} ({Source})";
}

/// <summary>An IP pool as a flow's route needs it: which overlay carries its addresses between nodes.</summary>
public sealed record FlowPool(string Name, string Cidr, string IpipMode, string VxlanMode)
{
    internal Maps.AddressPrefix Prefix { get; } = Maps.AddressPrefix.Parse(Cidr);

    /// <summary>The pools of IPPool objects (spec.cidr, ipipMode, vxlanMode; an unset mode is Never).</summary>
    public static IReadOnlyList<FlowPool> From(IEnumerable<JsonObject> pools) => pools
        .Select(p => (Name: p["metadata"]?["name"]?.GetValue<string>() ?? "?", Cidr: p["spec"]?["cidr"]?.GetValue<string>(), Spec: p["spec"]))
        .Where(p => p.Cidr is not null && Parses(p.Cidr))
        .Select(p => new FlowPool(p.Name, p.Cidr!, Mode(p.Spec, "ipipMode"), Mode(p.Spec, "vxlanMode")))
        .ToList();

    private static bool Parses(string cidr)
    {
        try
        {
            Maps.AddressPrefix.Parse(cidr);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static string Mode(JsonNode? spec, string field) => spec?[field]?.GetValue<string>() is { Length: > 0 } m ? m : "Never";
}

/// <summary>
/// The Felix settings that decide a flow but live in no map: compiled into the programs Felix
/// loads (defaultEndpointToHostAction: the from-workload object with "host_drop" in its name) or
/// applied elsewhere (the connect-time load balancer in the cgroup programs). Read from what Felix
/// on the node uses (Get-FelixBpfConfig -Effective); each is null when the node's configuration
/// could not be read (local mode without a cluster), and the prediction then says so.
/// </summary>
public sealed record FlowSettings(FlowSetting? EndpointToHostAction, FlowSetting? ConnectTimeLoadBalancing, FlowSetting? ExternalServiceMode = null, FlowSetting? VxlanPort = null,
    FlowSetting? LogLevel = null, FlowSetting? PolicyDebugEnabled = null, FlowSetting? KubeProxyCleanup = null)
{
    /// <summary>Whether kube-proxy runs on the cluster's nodes ("running", with the DaemonSet's state as its source); null: not known or not running.</summary>
    public FlowSetting? KubeProxy { get; init; }

    /// <summary>kube-proxy runs while Felix deletes its iptables rules (the guide's kube-proxy conflict): the two fight over service rules.</summary>
    public bool KubeProxyFights => KubeProxy is not null && KubeProxyCleanup?.Value.Equals("true", StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>The cluster's IP pools (empty: not read).</summary>
    public IReadOnlyList<FlowPool> Pools { get; init; } = Array.Empty<FlowPool>();

    /// <summary>The pool that holds an address, if the pools were read.</summary>
    public FlowPool? PoolOf(IPAddress address) => Pools.Where(p => p.Prefix.Matches(address)).OrderByDescending(p => p.Prefix.PrefixLength).FirstOrDefault();

    /// <summary>bpfLogLevel Debug: every program logs every packet to the trace buffer.</summary>
    public bool DebugLogging => LogLevel?.Value.Equals("Debug", StringComparison.OrdinalIgnoreCase) == true;

    /// <summary>Nothing known: predictions that need a setting are Unknown and say which.</summary>
    public static FlowSettings Unknown { get; } = new(null, null);

    /// <summary>The UDP port the programs check as VXLAN on a host interface (vxlanPort; Felix's default 4789 when unknown) and whether it was read.</summary>
    public (int Port, bool Known) Vxlan => VxlanPort is { } v && int.TryParse(v.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int p) ? (p, true) : (4789, false);

    /// <summary>bpfExternalServiceMode: true for DSR, false for Tunnel, null when unknown.</summary>
    public bool? Dsr => ExternalServiceMode?.Value.ToLowerInvariant() switch
    {
        "dsr" => true,
        "tunnel" => false,
        _ => null,
    };

    /// <summary>From Felix's effective values on a node (one per field).</summary>
    public static FlowSettings From(IEnumerable<FelixEffectiveValue> values)
    {
        var byField = values.GroupBy(v => v.Field, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        FlowSetting? Get(string field) => byField.TryGetValue(field, out FelixEffectiveValue? v) && v.Value.Length > 0
            ? new FlowSetting(field, v.Value, v.SourceDetail)
            : null;

        // Felix itself ignores the deprecated bpfConnectTimeLoadBalancingEnabled: Calico's client converts it
        // into bpfConnectTimeLoadBalancing when a FelixConfiguration is written.
        return new FlowSettings(Get("defaultEndpointToHostAction"), Get("bpfConnectTimeLoadBalancing"), Get("bpfExternalServiceMode"), Get("vxlanPort"), Get("bpfLogLevel"), Get("bpfPolicyDebugEnabled"), Get("bpfKubeProxyIptablesCleanupEnabled"));
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
