namespace CalicoBpf.Cluster;

/// <summary>How a FelixConfiguration field is written in JSON and shown in .NET.</summary>
public enum FelixValueKind
{
    /// <summary>true/false: bool.</summary>
    Boolean,
    /// <summary>A JSON integer: long.</summary>
    Integer,
    /// <summary>A string (enums and patterns are the CRD's): string.</summary>
    Text,
    /// <summary>A Go duration string ("1s", "1m30s", "500ms"): TimeSpan.</summary>
    Duration,
    /// <summary>A list of strings: ValueList&lt;string&gt;.</summary>
    TextList,
    /// <summary>An object of strings (bpfLogFilters, bpfConntrackTimeouts): a ValueMap.</summary>
    TextMap,
    /// <summary>An integer or a string (bpfPSNATPorts: 20000 or "20000:29999"): string.</summary>
    IntOrText,
}

/// <summary>
/// One eBPF-related FelixConfiguration field: its JSON name, kind, Felix's built-in default, whether
/// changing it can cut traffic (ConfirmImpact High), and the calico-node environment variable that
/// overrides it (matched case-insensitively by Felix).
/// </summary>
public sealed record FelixField(string Json, FelixValueKind Kind, string? Default, bool CutsTraffic, string Environment)
{
    /// <summary>The .NET property and Set-FelixBpfConfig parameter name: the JSON name with a capital.</summary>
    public string Property => char.ToUpperInvariant(Json[0]) + Json[1..];

    /// <summary>Felix's default in a release (<see cref="FelixFields.DefaultChanges"/>); <see cref="Default"/> is the newest release's.</summary>
    public string? DefaultIn(CalicoRelease release)
    {
        string? value = Default;
        foreach ((string field, CalicoRelease until, string? before) in FelixFields.DefaultChanges)
        {
            // Rows are newest first: the oldest change after the release decides its value.
            if (field == Json && !release.AtLeast(until))
            {
                value = before;
            }
        }

        return value;
    }
}

/// <summary>The eBPF-related FelixConfiguration fields (reference sections 2.1 to 2.3).</summary>
public static class FelixFields
{
    public static readonly IReadOnlyList<FelixField> All = new FelixField[]
    {
        new("bpfEnabled", FelixValueKind.Boolean, "false", true, "FELIX_BPFENABLED"),
        new("bpfLogLevel", FelixValueKind.Text, "Off", false, "FELIX_BPFLOGLEVEL"),
        new("bpfLogFilters", FelixValueKind.TextMap, null, false, "FELIX_BPFLOGFILTERS"),
        new("bpfCTLBLogFilter", FelixValueKind.Text, null, false, "FELIX_BPFCTLBLOGFILTER"),
        new("bpfConntrackLogLevel", FelixValueKind.Text, "Off", false, "FELIX_BPFCONNTRACKLOGLEVEL"),
        new("bpfConntrackMode", FelixValueKind.Text, "Auto", false, "FELIX_BPFCONNTRACKCLEANUPMODE"),
        new("bpfConntrackTimeouts", FelixValueKind.TextMap, null, false, "FELIX_BPFCONNTRACKTIMEOUTS"),
        new("bpfDataIfacePattern", FelixValueKind.Text, "^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan|bond).*)", true, "FELIX_BPFDATAIFACEPATTERN"),
        new("bpfL3IfacePattern", FelixValueKind.Text, null, true, "FELIX_BPFL3IFACEPATTERN"),
        new("bpfConnectTimeLoadBalancing", FelixValueKind.Text, "TCP", true, "FELIX_BPFCONNECTTIMELOADBALANCING"),
        new("bpfConnectTimeLoadBalancingEnabled", FelixValueKind.Boolean, null, true, "FELIX_BPFCONNECTTIMELOADBALANCINGENABLED"),
        new("bpfHostNetworkedNATWithoutCTLB", FelixValueKind.Text, "Enabled", true, "FELIX_BPFHOSTNETWORKEDNATWITHOUTCTLB"),
        new("bpfExternalServiceMode", FelixValueKind.Text, "Tunnel", true, "FELIX_BPFEXTERNALSERVICEMODE"),
        new("bpfDSROptoutCIDRs", FelixValueKind.TextList, null, true, "FELIX_BPFDSROPTOUTCIDRS"),
        new("bpfExtToServiceConnmark", FelixValueKind.Integer, "0", true, "FELIX_BPFEXTTOSERVICECONNMARK"),
        new("bpfKubeProxyIptablesCleanupEnabled", FelixValueKind.Boolean, "true", true, "FELIX_BPFKUBEPROXYIPTABLESCLEANUPENABLED"),
        new("bpfKubeProxyMinSyncPeriod", FelixValueKind.Duration, "1s", false, "FELIX_BPFKUBEPROXYMINSYNCPERIOD"),
        new("bpfKubeProxyHealthzPort", FelixValueKind.Integer, "10256", false, "FELIX_BPFKUBEPROXYHEALTHZPORT"),
        new("bpfKubeProxyEndpointSlicesEnabled", FelixValueKind.Boolean, null, false, "FELIX_BPFKUBEPROXYENDPOINTSLICESENABLED"),
        new("bpfPSNATPorts", FelixValueKind.IntOrText, "20000:29999", false, "FELIX_BPFPSNATPORTS"),
        new("bpfMapSizeNATFrontend", FelixValueKind.Integer, "65536", false, "FELIX_BPFMAPSIZENATFRONTEND"),
        new("bpfMapSizeNATBackend", FelixValueKind.Integer, "262144", false, "FELIX_BPFMAPSIZENATBACKEND"),
        new("bpfMapSizeNATAffinity", FelixValueKind.Integer, "65536", false, "FELIX_BPFMAPSIZENATAFFINITY"),
        new("bpfMapSizeRoute", FelixValueKind.Integer, "262144", false, "FELIX_BPFMAPSIZEROUTE"),
        new("bpfMapSizeConntrack", FelixValueKind.Integer, "512000", true, "FELIX_BPFMAPSIZECONNTRACK"),
        new("bpfMapSizePerCpuConntrack", FelixValueKind.Integer, "0", true, "FELIX_BPFMAPSIZEPERCPUCONNTRACK"),
        new("bpfMapSizeConntrackScaling", FelixValueKind.Text, "DoubleIfFull", false, "FELIX_BPFMAPSIZECONNTRACKSCALING"),
        new("bpfMapSizeConntrackCleanupQueue", FelixValueKind.Integer, "100000", false, "FELIX_BPFMAPSIZECONNTRACKCLEANUPQUEUE"),
        new("bpfMapSizeIPSets", FelixValueKind.Integer, "1048576", false, "FELIX_BPFMAPSIZEIPSETS"),
        new("bpfMapSizeIfState", FelixValueKind.Integer, "1000", false, "FELIX_BPFMAPSIZEIFSTATE"),
        new("bpfMaglevMaxEndpointsPerService", FelixValueKind.Integer, "100", false, "FELIX_BPFMAGLEVMAXENDPOINTSPERSERVICE"),
        new("bpfMaglevMaxServices", FelixValueKind.Integer, "100", false, "FELIX_BPFMAGLEVMAXSERVICES"),
        new("bpfEnforceRPF", FelixValueKind.Text, "Loose", true, "FELIX_BPFENFORCERPF"),
        new("bpfPolicyDebugEnabled", FelixValueKind.Boolean, "true", false, "FELIX_BPFPOLICYDEBUGENABLED"),
        new("bpfForceTrackPacketsFromIfaces", FelixValueKind.TextList, "docker+", false, "FELIX_BPFFORCETRACKPACKETSFROMIFACES"),
        new("bpfDisableGROForIfaces", FelixValueKind.Text, null, false, "FELIX_BPFDISABLEGROFORIFACES"),
        new("bpfExcludeCIDRsFromNAT", FelixValueKind.TextList, null, true, "FELIX_BPFEXCLUDECIDRSFROMNAT"),
        new("bpfExportBufferSizeMB", FelixValueKind.Integer, "1", false, "FELIX_BPFEXPORTBUFFERSIZEMB"),
        new("bpfHostConntrackBypass", FelixValueKind.Boolean, "false", true, "FELIX_BPFHOSTCONNTRACKBYPASS"),
        new("bpfDisableUnprivileged", FelixValueKind.Boolean, "true", false, "FELIX_BPFDISABLEUNPRIVILEGED"),
        new("bpfJITHardening", FelixValueKind.Text, "Auto", false, "FELIX_BPFJITHARDENING"),
        new("bpfRedirectToPeer", FelixValueKind.Text, "Enabled", true, "FELIX_BPFREDIRECTTOPEER"),
        new("bpfAttachType", FelixValueKind.Text, "Netkit", true, "FELIX_BPFATTACHTYPE"),
        new("bpfProfiling", FelixValueKind.Text, "Disabled", false, "FELIX_BPFPROFILING"),
        new("bpfOverlayHostSourceIP", FelixValueKind.Text, "TunnelAddress", true, "FELIX_BPFOVERLAYHOSTSOURCEIP"),
        new("bpfIPFragTimeout", FelixValueKind.Duration, null, false, "FELIX_BPFIPFRAGTIMEOUT"),
        new("bpfIPFragmentReassemblyEnabled", FelixValueKind.Boolean, "true", false, "FELIX_BPFIPFRAGMENTREASSEMBLYENABLED"),
        // Compiled into the from-workload program (felix/bpf-gpl/calculate-flags: host_drop objects for DROP).
        new("defaultEndpointToHostAction", FelixValueKind.Text, "Drop", true, "FELIX_DEFAULTENDPOINTTOHOSTACTION"),
        new("ipipEnabled", FelixValueKind.Boolean, null, true, "FELIX_IPINIPENABLED"),
        new("ipipMTU", FelixValueKind.Integer, "0", true, "FELIX_IPINIPMTU"),
        new("vxlanEnabled", FelixValueKind.Boolean, null, true, "FELIX_VXLANENABLED"),
        new("vxlanMTU", FelixValueKind.Integer, "0", true, "FELIX_VXLANMTU"),
        new("vxlanMTUV6", FelixValueKind.Integer, "0", true, "FELIX_VXLANMTUV6"),
        new("vxlanPort", FelixValueKind.Integer, "4789", true, "FELIX_VXLANPORT"),
        new("vxlanVNI", FelixValueKind.Integer, "4096", true, "FELIX_VXLANVNI"),
        new("wireguardEnabled", FelixValueKind.Boolean, "false", true, "FELIX_WIREGUARDENABLED"),
        new("wireguardEnabledV6", FelixValueKind.Boolean, "false", true, "FELIX_WIREGUARDENABLEDV6"),
        new("routeSource", FelixValueKind.Text, "CalicoIPAM", true, "FELIX_ROUTESOURCE"),
        new("ipForwarding", FelixValueKind.Text, "Enabled", true, "FELIX_IPFORWARDING"),
        new("ipv6Support", FelixValueKind.Boolean, "true", true, "FELIX_IPV6SUPPORT"),
        new("interfacePrefix", FelixValueKind.Text, "cali", true, "FELIX_INTERFACEPREFIX"),
        new("nftablesMode", FelixValueKind.Text, "Auto", true, "FELIX_NFTABLESMODE"),
        new("programClusterRoutes", FelixValueKind.Text, "EnabledIPIPOnly", true, "FELIX_PROGRAMCLUSTERROUTES"),
        new("logSeverityScreen", FelixValueKind.Text, "Info", false, "FELIX_LOGSEVERITYSCREEN"),
        new("featureDetectOverride", FelixValueKind.Text, null, true, "FELIX_FEATUREDETECTOVERRIDE"),
        new("featureGates", FelixValueKind.Text, null, false, "FELIX_FEATUREGATES"),
        new("cgroupV2Path", FelixValueKind.Text, null, false, "FELIX_CGROUPV2PATH"),
    };

    /// <summary>
    /// Defaults that changed between releases (felix/config/config_params.go at each tag): the field,
    /// the first release with the next value, and the value before it. Newest change first per field.
    /// A field that did not exist yet has the behaviour Felix had then (TC attachment before bpfAttachType).
    /// </summary>
    internal static readonly (string Field, CalicoRelease Until, string? Before)[] DefaultChanges =
    {
        ("bpfAttachType", new CalicoRelease(3, 33, 0), "TCX"),
        ("bpfAttachType", new CalicoRelease(3, 31, 0), "TC"),
        ("bpfRedirectToPeer", new CalicoRelease(3, 32, 0), "L2Only"),
        ("bpfRedirectToPeer", new CalicoRelease(3, 29, 0), null),
        ("nftablesMode", new CalicoRelease(3, 32, 0), "Disabled"),
        ("nftablesMode", new CalicoRelease(3, 29, 0), null),
        ("programClusterRoutes", new CalicoRelease(3, 33, 0), "Disabled"),
        ("programClusterRoutes", new CalicoRelease(3, 31, 0), null),
        ("bpfHostConntrackBypass", new CalicoRelease(3, 30, 0), "true"),
        ("bpfEnforceRPF", new CalicoRelease(3, 26, 0), "Strict"),
        ("bpfDataIfacePattern", new CalicoRelease(3, 30, 0), "^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan|bond).*|tunl0$|vxlan.calico$|vxlan-v6.calico$|wireguard.cali$|wg-v6.cali$)"),
        ("bpfDataIfacePattern", new CalicoRelease(3, 28, 1), "^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan).*|tunl0$|vxlan.calico$|vxlan-v6.calico$|wireguard.cali$|wg-v6.cali$)"),
        ("bpfDataIfacePattern", new CalicoRelease(3, 27, 0), "^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan).*|tunl0$|vxlan.calico$|wireguard.cali$|wg-v6.cali$)"),
        ("bpfDataIfacePattern", new CalicoRelease(3, 25, 0), "^((en|wl|ww|sl|ib)[opsx].*|(eth|wlan|wwan).*|tunl0$|vxlan.calico$|wireguard.cali$|wg-v6.cali$)"),
        ("bpfDataIfacePattern", new CalicoRelease(3, 24, 0), "^((en|wl|ww|sl|ib)[opsx].*|(eth|wlan|wwan).*|tunl0$|vxlan.calico$|wireguard.cali$)"),
    };

    /// <summary>
    /// The words a text field takes, as the head CRD spells them (its enums and (?i) patterns,
    /// api/config/crd at v3.34.0-0.dev) with Felix's oneof lists (felix/config/config_params.go);
    /// any case is accepted. For completion: the cluster's own CRD still decides what is valid.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, IReadOnlyList<string>> Choices = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal)
    {
        ["bpfLogLevel"] = new[] { "Off", "Info", "Debug" },
        ["bpfConntrackLogLevel"] = new[] { "Off", "Debug" },
        ["bpfConntrackMode"] = new[] { "Auto", "Userspace", "BPFProgram" },
        ["bpfCTLBLogFilter"] = new[] { "all" },
        ["bpfConnectTimeLoadBalancing"] = new[] { "TCP", "Enabled", "Disabled" },
        ["bpfHostNetworkedNATWithoutCTLB"] = new[] { "Enabled", "Disabled" },
        ["bpfExternalServiceMode"] = new[] { "Tunnel", "DSR" },
        ["bpfMapSizeConntrackScaling"] = new[] { "Disabled", "DoubleIfFull" },
        ["bpfEnforceRPF"] = new[] { "Disabled", "Strict", "Loose" },
        ["bpfJITHardening"] = new[] { "Auto", "Strict" },
        ["bpfRedirectToPeer"] = new[] { "Enabled", "Disabled", "L2Only" },
        ["bpfAttachType"] = new[] { "TC", "TCX", "Netkit" },
        ["bpfProfiling"] = new[] { "Enabled", "Disabled" },
        ["bpfOverlayHostSourceIP"] = new[] { "TunnelAddress", "HostAddress" },
        ["defaultEndpointToHostAction"] = new[] { "Drop", "Accept", "Return" },
        ["routeSource"] = new[] { "WorkloadIPs", "CalicoIPAM" },
        ["ipForwarding"] = new[] { "Enabled", "Disabled" },
        ["nftablesMode"] = new[] { "Disabled", "Enabled", "Auto" },
        ["programClusterRoutes"] = new[] { "Enabled", "Disabled", "EnabledIPIPOnly", "EnabledNoEncapOnly" },
        ["logSeverityScreen"] = new[] { "Trace", "Debug", "Info", "Warning", "Error", "Fatal" },
    };

    private static readonly Dictionary<string, FelixField> ByName = All
        .SelectMany(f => new[] { (f.Json, f), (f.Property, f) })
        .DistinctBy(p => p.Item1, StringComparer.OrdinalIgnoreCase)
        .ToDictionary(p => p.Item1, p => p.f, StringComparer.OrdinalIgnoreCase);

    /// <summary>A field by JSON or property name (any case), or null.</summary>
    public static FelixField? Find(string name) => ByName.TryGetValue(name, out FelixField? f) ? f : null;

    /// <summary>The .NET value of a JSON value of this field; null for JSON null or absent.</summary>
    public static object? ToValue(FelixField field, JsonNode? node)
    {
        if (node is null)
        {
            return null;
        }

        switch (field.Kind)
        {
            case FelixValueKind.Boolean:
                return node.GetValueKind() switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => null,
                };
            case FelixValueKind.Integer:
                return node.GetValueKind() == JsonValueKind.Number && long.TryParse(node.ToJsonString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) ? l : null;
            case FelixValueKind.Duration:
                return node.GetValueKind() == JsonValueKind.String && GoDuration.TryParse(node.GetValue<string>(), out TimeSpan d) ? d : null;
            case FelixValueKind.TextList:
                return node is JsonArray a ? new ValueList<string>(a.Select(x => x?.ToString() ?? string.Empty)) : null;
            case FelixValueKind.TextMap:
                return node is JsonObject o ? new ValueMap(o.ToDictionary(p => p.Key, p => p.Value?.ToString() ?? string.Empty)) : null;
            default:
                return node.GetValueKind() == JsonValueKind.String ? node.GetValue<string>() : node.ToJsonString();
        }
    }

    /// <summary>A FelixConfiguration object as the model has it: its eBPF fields decoded by their types, in catalog order.</summary>
    public static FelixBpfConfig Read(JsonObject resource, string node = "")
    {
        JsonObject spec = resource["spec"] as JsonObject ?? new JsonObject();
        return new FelixBpfConfig(resource, All.Where(f => spec.ContainsKey(f.Json)).Select(f => KeyValuePair.Create(f.Json, ToValue(f, spec[f.Json]))), node);
    }
}

/// <summary>Go's time.Duration text ("1h2m3.5s", "500ms", "0s"), as Felix and the CRDs write durations.</summary>
public static class GoDuration
{
    private static readonly Regex Part = new(@"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", RegexOptions.CultureInvariant);

    public static bool TryParse(string text, out TimeSpan value)
    {
        value = TimeSpan.Zero;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        if (text == "0")
        {
            return true;
        }

        int at = 0;
        double ticks = 0;
        foreach (Match m in Part.Matches(text))
        {
            if (m.Index != at)
            {
                return false;
            }

            at += m.Length;
            double n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            ticks += n * m.Groups[2].Value switch
            {
                "ns" => 0.01,
                "us" or "µs" => 10,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                _ => TimeSpan.TicksPerHour,
            };
        }

        if (at != text.Length)
        {
            return false;
        }

        value = TimeSpan.FromTicks((long)ticks);
        return true;
    }
}
