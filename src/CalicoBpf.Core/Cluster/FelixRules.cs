namespace CalicoBpf.Cluster;

/// <summary>
/// What a FelixConfiguration field may hold beyond what its CRD says. The CRD types most of these
/// fields as a bare "integer" or "string", so the API server stores -5 as a conntrack size and 99999
/// as a VXLAN port; Felix then refuses the value at start ("Replacing invalid value with default"),
/// crashes on it, or hands the kernel a truncated one. Each rule names where it comes from:
/// <list type="bullet">
/// <item>"validator": the field's validate tag in api/pkg/apis/projectcalico/v3/felixconfig.go and
/// libcalico-go/lib/validator/v3/validator.go (what calicoctl and the Calico API server enforce);</item>
/// <item>"Felix": the field's config tag in felix/config/config_params.go (int(min:max), non-zero,
/// regexp, cidr-list, iface-list, portrange, oneof), with felix/config/param_types.go;</item>
/// <item>"kernel": the width of the netlink or bpf(2) attribute Felix writes the value into.</item>
/// </list>
/// Read at v3.32.1; the same at v3.28 and v3.30 for every field those releases have.
/// </summary>
public static class FelixRules
{
    private const string MapSize = "Felix non-zero; bpf(2) max_entries is a u32";

    /// <summary>The rule of each field that has one, by JSON name.</summary>
    public static readonly IReadOnlyDictionary<string, FelixRule> ByField = new Dictionary<string, FelixRule>(StringComparer.Ordinal)
    {
        ["bpfExtToServiceConnmark"] = FelixRule.Range(0, uint.MaxValue, "validator gte=0,lte=4294967295 (a 32-bit mark)"),
        ["bpfKubeProxyHealthzPort"] = FelixRule.Range(0, 65535, "validator gte=0,lte=65535; 0 turns the healthz server off"),
        ["bpfMapSizeNATFrontend"] = FelixRule.Range(1, uint.MaxValue, MapSize),
        ["bpfMapSizeNATBackend"] = FelixRule.Range(1, uint.MaxValue, MapSize),
        ["bpfMapSizeNATAffinity"] = FelixRule.Range(1, uint.MaxValue, MapSize),
        ["bpfMapSizeRoute"] = FelixRule.Range(1, uint.MaxValue, MapSize),
        ["bpfMapSizeConntrack"] = FelixRule.Range(1, uint.MaxValue, MapSize),
        ["bpfMapSizePerCpuConntrack"] = FelixRule.Range(0, uint.MaxValue, "0 uses bpfMapSizeConntrack; bpf(2) max_entries is a u32"),
        ["bpfMapSizeConntrackCleanupQueue"] = FelixRule.Range(1, uint.MaxValue, "validator gte=1; bpf(2) max_entries is a u32"),
        ["bpfMapSizeIPSets"] = FelixRule.Range(1, uint.MaxValue, MapSize),
        ["bpfMapSizeIfState"] = FelixRule.Range(1, uint.MaxValue, MapSize),
        ["bpfMaglevMaxEndpointsPerService"] = FelixRule.Range(1, 3000, "Felix int(1:3000), validator gt=0,lte=3000"),
        ["bpfMaglevMaxServices"] = FelixRule.Range(1, 3000, "Felix int(1:3000), validator gt=0,lte=3000"),
        ["bpfExportBufferSizeMB"] = FelixRule.Range(1, int.MaxValue, "Felix non-zero"),
        ["ipipMTU"] = FelixRule.Range(0, 65535, "0 detects the MTU; an IP packet is at most 65535 bytes"),
        ["vxlanMTU"] = FelixRule.Range(0, 65535, "0 detects the MTU; an IP packet is at most 65535 bytes"),
        ["vxlanMTUV6"] = FelixRule.Range(0, 65535, "0 detects the MTU; an IP packet is at most 65535 bytes"),
        ["vxlanPort"] = FelixRule.Range(1, 65535, "kernel IFLA_VXLAN_PORT is 16 bits: a larger port is silently truncated"),
        ["vxlanVNI"] = FelixRule.Range(0, 16777215, "kernel IFLA_VXLAN_ID is 24 bits (the kernel refuses more with ERANGE)"),
        ["bpfPSNATPorts"] = FelixRule.PortRange(),
        ["bpfDataIfacePattern"] = FelixRule.GoRegexp(),
        ["bpfL3IfacePattern"] = FelixRule.GoRegexp(),
        ["bpfDisableGROForIfaces"] = FelixRule.GoRegexp(),
        ["bpfDSROptoutCIDRs"] = FelixRule.Cidrs(),
        ["bpfExcludeCIDRsFromNAT"] = FelixRule.Cidrs(),
        ["bpfForceTrackPacketsFromIfaces"] = FelixRule.EachMatches(@"^[a-zA-Z0-9:._+-]{1,15}$", "an interface name of 1 to 15 letters, digits or :._+- (+ is a wildcard)", "validator ifaceFilterSlice, Felix iface-filter-slice"),
        ["bpfLogFilters"] = FelixRule.KeysMatch(@"^[a-zA-Z0-9_.-]{1,15}$", "an interface name of 1 to 15 letters, digits or _.- (or all, weps, heps)", "validator bpfLogFilters"),
        ["bpfCTLBLogFilter"] = FelixRule.OneOf("Felix oneof(all)", "all"),
        ["interfacePrefix"] = FelixRule.Matches(@"^[a-zA-Z0-9_-]{1,15}(,[a-zA-Z0-9_-]{1,15})*$", "interface-name prefixes of 1 to 15 letters, digits or _-, separated by commas", "Felix iface-list"),
    };

    /// <summary>What is wrong with a value of a field, in a sentence that says what to give instead; null when Felix takes it (or the field has no rule).</summary>
    public static string? Check(FelixField field, JsonNode? value) =>
        value is null || !ByField.TryGetValue(field.Json, out FelixRule? rule) ? null : rule.Check(value) is { } why ? $"{field.Json}: {why} ({rule.Source})." : null;
}

/// <summary>One field's rule: a check returning what is wrong (null when the value is good) and where the rule comes from.</summary>
public sealed class FelixRule
{
    private readonly Func<JsonNode, string?> _check;

    private FelixRule(string source, Func<JsonNode, string?> check)
    {
        Source = source;
        _check = check;
    }

    /// <summary>Where Calico or the kernel says so.</summary>
    public string Source { get; }

    public string? Check(JsonNode value) => _check(value);

    public static FelixRule Range(long min, long max, string source) => new(source, v =>
        v.GetValueKind() != JsonValueKind.Number || !long.TryParse(v.ToJsonString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) ? null
        : n < min || n > max ? $"{n} is out of range; give {min} to {max}" : null);

    /// <summary>numorstring.Port as Felix's portrange parameter takes it: N or N:M, 0 to 65535, N not above M, no port names.</summary>
    public static FelixRule PortRange() => new("Felix portrange", v =>
    {
        string text = v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : v.ToJsonString();
        string[] parts = text.Split(':');
        bool ok = parts.Length is 1 or 2 && parts.All(p => ushort.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _));
        if (!ok)
        {
            return $"'{text}' is not a port range; give a port (20000) or two ports FIRST:LAST (20000:29999), each 0 to 65535";
        }

        return parts.Length == 2 && ushort.Parse(parts[0], CultureInfo.InvariantCulture) > ushort.Parse(parts[1], CultureInfo.InvariantCulture)
            ? $"'{text}' starts above its end; give FIRST:LAST with FIRST not above LAST" : null;
    });

    /// <summary>A regular expression Go's regexp (RE2 syntax) compiles (<see cref="Cluster.GoRegexp"/>).</summary>
    public static FelixRule GoRegexp() => new("validator regexp, Felix regexp", v =>
    {
        string text = v.GetValue<string>();
        return Cluster.GoRegexp.Problem(text) is { } why ? $"'{text}' {why}" : null;
    });

    /// <summary>Each element an address or a CIDR (libcalico-go's ParseCIDROrIP).</summary>
    public static FelixRule Cidrs() => new("validator cidrs, Felix cidr-list", v =>
    {
        string[] bad = Elements(v).Where(e => !IsCidrOrAddress(e)).ToArray();
        return bad.Length == 0 ? null : $"{string.Join(", ", bad.Select(b => $"'{b}'"))} {(bad.Length == 1 ? "is not an address or a CIDR" : "are not addresses or CIDRs")}; give forms such as 10.0.0.0/8, 192.168.1.5 or fd00::/64";
    });

    public static FelixRule EachMatches(string pattern, string what, string source)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        return new(source, v =>
        {
            string[] bad = Elements(v).Where(e => !regex.IsMatch(e)).ToArray();
            return bad.Length == 0 ? null : $"{string.Join(", ", bad.Select(b => $"'{b}'"))}: each must be {what}";
        });
    }

    public static FelixRule KeysMatch(string pattern, string what, string source)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        return new(source, v =>
        {
            string[] bad = v is JsonObject o ? o.Select(p => p.Key).Where(k => !regex.IsMatch(k)).ToArray() : Array.Empty<string>();
            return bad.Length == 0 ? null : $"key {string.Join(", ", bad.Select(b => $"'{b}'"))}: each key must be {what}";
        });
    }

    public static FelixRule Matches(string pattern, string what, string source)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        return new(source, v => v.GetValueKind() != JsonValueKind.String || regex.IsMatch(v.GetValue<string>()) ? null : $"'{v.GetValue<string>()}' is not {what}");
    }

    /// <summary>One of the given words, any case (Felix matches oneof case-insensitively), or empty for the default.</summary>
    public static FelixRule OneOf(string source, params string[] choices) => new(source, v =>
    {
        string text = v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : v.ToJsonString();
        return text.Length == 0 || choices.Contains(text, StringComparer.OrdinalIgnoreCase) ? null
            : $"'{text}' is not accepted; give {string.Join(" or ", choices)}, or an empty string for the default";
    });

    private static IEnumerable<string> Elements(JsonNode v) =>
        v is JsonArray a ? a.Select(x => x?.ToString() ?? string.Empty) : new[] { v.ToString() };

    private static bool IsCidrOrAddress(string text)
    {
        int slash = text.IndexOf('/');
        string host = slash < 0 ? text : text[..slash];

        // IPAddress.TryParse takes "10" as 0.0.0.10; Go's net.ParseIP takes only full forms.
        bool full = host.Contains(':') ? !host.Contains('%') : Regex.IsMatch(host, @"^\d{1,3}(\.\d{1,3}){3}$");
        if (!full || !IPAddress.TryParse(host, out IPAddress? address))
        {
            return false;
        }

        return slash < 0 || int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int length)
            && length <= (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
    }
}
