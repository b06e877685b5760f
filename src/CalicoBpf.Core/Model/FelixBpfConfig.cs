namespace CalicoBpf;

/// <summary>One FelixConfiguration object with its eBPF-related fields as typed properties (null: not set in this object).</summary>
public sealed class FelixBpfConfig
{
    private readonly Dictionary<string, object?> _values;
    private ValueTree? _resource;

    /// <param name="resource">The object as the API served it.</param>
    /// <param name="values">The eBPF fields it sets, typed, in catalog order (Cluster.FelixFields.Read decodes them).</param>
    /// <param name="node">The node a selector-scoped object was read for.</param>
    public FelixBpfConfig(JsonObject resource, IEnumerable<KeyValuePair<string, object?>> values, string node = "")
    {
        Json = resource;
        Name = resource["metadata"]?["name"]?.GetValue<string>() ?? string.Empty;
        ApiVersion = resource["apiVersion"]?.GetValue<string>() ?? string.Empty;
        ResourceVersion = resource["metadata"]?["resourceVersion"]?.GetValue<string>() ?? string.Empty;
        Scope = Name == "default" ? "Global" : Name.StartsWith("node.", StringComparison.Ordinal) ? "Node" : "Selector";
        Node = Scope == "Node" ? Name[5..] : node;
        _values = new Dictionary<string, object?>(StringComparer.Ordinal);
        var set = new List<string>();
        foreach ((string json, object? value) in values)
        {
            _values[json] = value;
            set.Add(json);
        }

        SetFields = set;
    }

    /// <summary>default, node.NAME, or another (selector-scoped) name.</summary>
    public string Name { get; }

    /// <summary>crd.projectcalico.org/v1 or projectcalico.org/v3: the group it was read through.</summary>
    public string ApiVersion { get; }

    public string ResourceVersion { get; }

    /// <summary>Global (default), Node (node.NAME) or Selector.</summary>
    public string Scope { get; }

    /// <summary>The node of a node.NAME object; empty for the others.</summary>
    public string Node { get; }

    /// <summary>The eBPF-related fields this object sets (JSON names), in catalog order.</summary>
    public ValueList<string> SetFields { get; }

    /// <summary>The whole resource as the API served it, as plain values (ConvertTo-Json writes it back as it came).</summary>
    public ValueTree Resource => _resource ??= ValueTree.From(Json);

    /// <summary>The whole resource as the API served it.</summary>
    internal JsonObject Json { get; }

    /// <summary>A field's value as written in the object ("Debug", "true", "1s"), "(unset)" when absent.</summary>
    public string Show(string json) => ShowValue(Json["spec"]?[json]);

    /// <summary>A field's JSON value as written ("Debug", "true", "1s"), "(unset)" for none: one rule for every message.</summary>
    public static string ShowValue(JsonNode? node) => node switch
    {
        null => "(unset)",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>() is { Length: > 0 } s ? s : "\"\"",
        _ => node.ToJsonString(),
    };

    /// <summary>A duration field as the object writes it ("1m30s"); null when it does not set it.</summary>
    private string? Written(string json) => Value(json) is null ? null : Json["spec"]?[json]?.GetValue<string>();

    /// <summary>A field's value by JSON name (null when this object does not set it).</summary>
    public object? Value(string json) => _values.TryGetValue(json, out object? v) ? v : null;

    public bool? BpfEnabled => (bool?)Value("bpfEnabled");

    public string? BpfLogLevel => (string?)Value("bpfLogLevel");

    public ValueMap? BpfLogFilters => (ValueMap?)Value("bpfLogFilters");

    public string? BpfCTLBLogFilter => (string?)Value("bpfCTLBLogFilter");

    public string? BpfConntrackLogLevel => (string?)Value("bpfConntrackLogLevel");

    public string? BpfConntrackMode => (string?)Value("bpfConntrackMode");

    public ValueMap? BpfConntrackTimeouts => (ValueMap?)Value("bpfConntrackTimeouts");

    public string? BpfDataIfacePattern => (string?)Value("bpfDataIfacePattern");

    public string? BpfL3IfacePattern => (string?)Value("bpfL3IfacePattern");

    public string? BpfConnectTimeLoadBalancing => (string?)Value("bpfConnectTimeLoadBalancing");

    public bool? BpfConnectTimeLoadBalancingEnabled => (bool?)Value("bpfConnectTimeLoadBalancingEnabled");

    public string? BpfHostNetworkedNATWithoutCTLB => (string?)Value("bpfHostNetworkedNATWithoutCTLB");

    public string? BpfExternalServiceMode => (string?)Value("bpfExternalServiceMode");

    public ValueList<string>? BpfDSROptoutCIDRs => (ValueList<string>?)Value("bpfDSROptoutCIDRs");

    public long? BpfExtToServiceConnmark => (long?)Value("bpfExtToServiceConnmark");

    public bool? BpfKubeProxyIptablesCleanupEnabled => (bool?)Value("bpfKubeProxyIptablesCleanupEnabled");

    /// <summary>As written ("5s"); PowerShell shows the TimeSpan as the hidden property BpfKubeProxyMinSyncPeriodValue.</summary>
    public string? BpfKubeProxyMinSyncPeriod => Written("bpfKubeProxyMinSyncPeriod");

    internal TimeSpan? BpfKubeProxyMinSyncPeriodValue => (TimeSpan?)Value("bpfKubeProxyMinSyncPeriod");

    public long? BpfKubeProxyHealthzPort => (long?)Value("bpfKubeProxyHealthzPort");

    public bool? BpfKubeProxyEndpointSlicesEnabled => (bool?)Value("bpfKubeProxyEndpointSlicesEnabled");

    public string? BpfPSNATPorts => (string?)Value("bpfPSNATPorts");

    public long? BpfMapSizeNATFrontend => (long?)Value("bpfMapSizeNATFrontend");

    public long? BpfMapSizeNATBackend => (long?)Value("bpfMapSizeNATBackend");

    public long? BpfMapSizeNATAffinity => (long?)Value("bpfMapSizeNATAffinity");

    public long? BpfMapSizeRoute => (long?)Value("bpfMapSizeRoute");

    public long? BpfMapSizeConntrack => (long?)Value("bpfMapSizeConntrack");

    public long? BpfMapSizePerCpuConntrack => (long?)Value("bpfMapSizePerCpuConntrack");

    public string? BpfMapSizeConntrackScaling => (string?)Value("bpfMapSizeConntrackScaling");

    public long? BpfMapSizeConntrackCleanupQueue => (long?)Value("bpfMapSizeConntrackCleanupQueue");

    public long? BpfMapSizeIPSets => (long?)Value("bpfMapSizeIPSets");

    public long? BpfMapSizeIfState => (long?)Value("bpfMapSizeIfState");

    public long? BpfMaglevMaxEndpointsPerService => (long?)Value("bpfMaglevMaxEndpointsPerService");

    public long? BpfMaglevMaxServices => (long?)Value("bpfMaglevMaxServices");

    public string? BpfEnforceRPF => (string?)Value("bpfEnforceRPF");

    public string? DefaultEndpointToHostAction => (string?)Value("defaultEndpointToHostAction");

    public bool? BpfPolicyDebugEnabled => (bool?)Value("bpfPolicyDebugEnabled");

    public ValueList<string>? BpfForceTrackPacketsFromIfaces => (ValueList<string>?)Value("bpfForceTrackPacketsFromIfaces");

    public string? BpfDisableGROForIfaces => (string?)Value("bpfDisableGROForIfaces");

    public ValueList<string>? BpfExcludeCIDRsFromNAT => (ValueList<string>?)Value("bpfExcludeCIDRsFromNAT");

    public long? BpfExportBufferSizeMB => (long?)Value("bpfExportBufferSizeMB");

    public bool? BpfHostConntrackBypass => (bool?)Value("bpfHostConntrackBypass");

    public bool? BpfDisableUnprivileged => (bool?)Value("bpfDisableUnprivileged");

    public string? BpfJITHardening => (string?)Value("bpfJITHardening");

    public string? BpfRedirectToPeer => (string?)Value("bpfRedirectToPeer");

    public string? BpfAttachType => (string?)Value("bpfAttachType");

    public string? BpfProfiling => (string?)Value("bpfProfiling");

    public string? BpfOverlayHostSourceIP => (string?)Value("bpfOverlayHostSourceIP");

    /// <summary>As written ("30s"); PowerShell shows the TimeSpan as the hidden property BpfIPFragTimeoutValue.</summary>
    public string? BpfIPFragTimeout => Written("bpfIPFragTimeout");

    internal TimeSpan? BpfIPFragTimeoutValue => (TimeSpan?)Value("bpfIPFragTimeout");

    public bool? BpfIPFragmentReassemblyEnabled => (bool?)Value("bpfIPFragmentReassemblyEnabled");

    public bool? IpipEnabled => (bool?)Value("ipipEnabled");

    public long? IpipMTU => (long?)Value("ipipMTU");

    public bool? VxlanEnabled => (bool?)Value("vxlanEnabled");

    public long? VxlanMTU => (long?)Value("vxlanMTU");

    public long? VxlanMTUV6 => (long?)Value("vxlanMTUV6");

    public long? VxlanPort => (long?)Value("vxlanPort");

    public long? VxlanVNI => (long?)Value("vxlanVNI");

    public bool? WireguardEnabled => (bool?)Value("wireguardEnabled");

    public bool? WireguardEnabledV6 => (bool?)Value("wireguardEnabledV6");

    public string? RouteSource => (string?)Value("routeSource");

    public string? IpForwarding => (string?)Value("ipForwarding");

    public bool? Ipv6Support => (bool?)Value("ipv6Support");

    public string? InterfacePrefix => (string?)Value("interfacePrefix");

    public string? NftablesMode => (string?)Value("nftablesMode");

    public string? ProgramClusterRoutes => (string?)Value("programClusterRoutes");

    public string? LogSeverityScreen => (string?)Value("logSeverityScreen");

    public string? FeatureDetectOverride => (string?)Value("featureDetectOverride");

    public string? FeatureGates => (string?)Value("featureGates");

    public string? CgroupV2Path => (string?)Value("cgroupV2Path");

    public override string ToString() => $"{ApiVersion} FelixConfiguration {Name}";
}
