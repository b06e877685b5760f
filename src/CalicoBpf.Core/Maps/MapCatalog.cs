using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>A pin name taken apart: base name, version, family, and whether it is a resize leftover.</summary>
public sealed record CalicoMapName(string PinName, string BaseName, int Version, MapFamily Family, bool IsOld)
{
    /// <summary>Base name plus version, as Felix builds pin names (no suffix for version 1).</summary>
    public static string Versioned(string baseName, int version) =>
        version <= 1 ? baseName : baseName + version.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Calico's map names (reference section 0) and how to find the live map of a family: the highest
/// version pinned, never a <c>_old</c> pin left by a resize.
/// </summary>
public static class MapCatalog
{
    /// <summary>Where Felix pins every map.</summary>
    public const string DefaultPinDirectory = NodePaths.CalicoPinDirectory;

    /// <summary>Known base names with a short description.</summary>
    private static readonly Dictionary<string, string> KnownBases = new(StringComparer.Ordinal)
    {
        ["cali_v4_ct"] = "IPv4 conntrack",
        ["cali_v6_ct"] = "IPv6 conntrack",
        ["cali_v4_ccq"] = "IPv4 conntrack cleanup queue",
        ["cali_v6_ccq"] = "IPv6 conntrack cleanup queue",
        ["cali_counters"] = "per-interface packet counters",
        ["cali_rule_ctrs"] = "policy rule hit counters",
        ["cali_profiling"] = "program profiling",
        ["cali_v4_nat_fe"] = "IPv4 service frontends",
        ["cali_v6_nat_fe"] = "IPv6 service frontends",
        ["cali_v4_nat_be"] = "IPv4 service backends",
        ["cali_v6_nat_be"] = "IPv6 service backends",
        ["cali_v4_nat_aff"] = "IPv4 session affinity",
        ["cali_v6_nat_aff"] = "IPv6 session affinity",
        ["cali_v4_mglv"] = "IPv4 Maglev lookup table",
        ["cali_v6_mglv"] = "IPv6 Maglev lookup table",
        ["cali_v4_routes"] = "IPv4 routes",
        ["cali_v6_routes"] = "IPv6 routes",
        ["cali_v4_ip_sets"] = "IPv4 IP sets",
        ["cali_v6_ip_sets"] = "IPv6 IP sets",
        ["cali_v4_arp"] = "IPv4 ARP (tunnel neighbours)",
        ["cali_v6_arp"] = "IPv6 neighbours",
        ["cali_iface"] = "interface state",
        ["cali_v4_fsafes"] = "IPv4 failsafe ports",
        ["cali_v6_fsafes"] = "IPv6 failsafe ports",
        ["cali_v4_srmsg"] = "IPv4 UDP sendmsg/recvmsg translation",
        ["cali_v6_srmsg"] = "IPv6 UDP sendmsg/recvmsg translation",
        ["cali_v4_ct_nats"] = "IPv4 connect-time NAT",
        ["cali_v6_ct_nats"] = "IPv6 connect-time NAT",
        ["cali_v4_sprefix"] = "IPv4 allowed workload sources",
        ["cali_v6_sprefix"] = "IPv6 allowed workload sources",
        ["cali_v4_frags"] = "IPv4 fragments",
        ["cali_v4_frgtmp"] = "IPv4 fragment scratch",
        ["cali_v4_frgfwd"] = "IPv4 fragment forwarding",
        ["cali_qos"] = "QoS state",
        ["cali_qos_conn"] = "QoS connection limits",
        ["cali_state"] = "per-packet scratch state",
        ["cali_rb_evnt"] = "event ring buffer",
        ["cali_rb_drops"] = "event ring buffer drops",
        ["cali_progs_ing"] = "ingress program array",
        ["cali_progs_egr"] = "egress program array",
        ["cali_p_nk_ing"] = "netkit ingress program array",
        ["cali_p_nk_egr"] = "netkit egress program array",
        ["xdp_cali_progs"] = "XDP program array",
        ["cali_jump_ing"] = "ingress policy jump table",
        ["cali_jump_egr"] = "egress policy jump table",
        ["cali_j_nk_ing"] = "netkit ingress policy jump table",
        ["cali_j_nk_egr"] = "netkit egress policy jump table",
        ["xdp_cali_jump"] = "XDP policy jump table",
        ["cali_ctlb_conn"] = "connect-time LB connect programs",
        ["cali_ctlb_send"] = "connect-time LB sendmsg programs",
        ["cali_ctlb_recv"] = "connect-time LB recvmsg programs",
    };

    public const string ConntrackV4 = "cali_v4_ct";
    public const string ConntrackV6 = "cali_v6_ct";
    public const string Counters = "cali_counters";

    /// <summary>True for names Calico uses for its maps.</summary>
    public static bool IsCalicoPin(string name) =>
        name.StartsWith("cali_", StringComparison.Ordinal) || name.StartsWith("xdp_cali_", StringComparison.Ordinal);

    public static string Describe(string baseName) => KnownBases.TryGetValue(baseName, out string? d) ? d : string.Empty;

    /// <summary>Takes a pin name apart. Returns null for names that are not Calico's.</summary>
    public static CalicoMapName? Parse(string pinName)
    {
        if (!IsCalicoPin(pinName))
        {
            return null;
        }

        string name = pinName;
        bool isOld = name.EndsWith("_old", StringComparison.Ordinal);
        if (isOld)
        {
            name = name[..^4];
        }

        string? baseName = null;
        int version = 1;
        if (KnownBases.ContainsKey(name))
        {
            baseName = name;
        }
        else
        {
            // Longest known base followed only by digits wins (cali_v4_ct + 4, cali_counters + 6).
            foreach (string known in KnownBases.Keys)
            {
                if (name.Length > known.Length && name.StartsWith(known, StringComparison.Ordinal)
                    && IsDigits(name.AsSpan(known.Length)) && (baseName is null || known.Length > baseName.Length))
                {
                    baseName = known;
                }
            }

            if (baseName is null)
            {
                // A map this catalogue does not know yet: trailing digits are its version.
                int end = name.Length;
                while (end > 0 && char.IsAsciiDigit(name[end - 1]))
                {
                    end--;
                }

                baseName = end < name.Length && end > 0 && name[end - 1] != '_' ? name[..end] : name;
            }

            if (baseName.Length < name.Length)
            {
                version = int.Parse(name.AsSpan(baseName.Length), NumberStyles.None, CultureInfo.InvariantCulture);
            }
        }

        MapFamily family = baseName.Contains("_v4_", StringComparison.Ordinal) ? MapFamily.IPv4
            : baseName.Contains("_v6_", StringComparison.Ordinal) ? MapFamily.IPv6
            : MapFamily.Any;
        return new CalicoMapName(pinName, baseName, version, family, isOld);
    }

    private static bool IsDigits(ReadOnlySpan<char> s)
    {
        if (s.IsEmpty || s.Length > 3)
        {
            return false;
        }

        foreach (char c in s)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Every Calico map pinned on a node (resize leftovers included, flagged IsOld), ordered by name.
    /// A node with none is not running Calico's eBPF dataplane: that is an error naming the node.
    /// </summary>
    public static IReadOnlyList<CalicoMapName> ListMaps(this INodeMaps node)
    {
        var pins = node.ListPins().Select(Parse).OfType<CalicoMapName>().OrderBy(p => p.PinName, StringComparer.Ordinal).ToList();
        if (pins.Count == 0)
        {
            throw new BpfEnvironmentException(
                $"No Calico BPF maps are pinned in {node.PinDirectory} on {node.Node}. Is calico-node running in eBPF mode there (FelixConfiguration bpfEnabled: true)? Use -PinPath for maps pinned elsewhere, or -Node to read another node.",
                BpfEnvironmentProblem.NoCalicoMaps, node.PinDirectory);
        }

        return pins;
    }

    /// <summary>Every Calico pin in a directory (resize leftovers included, flagged IsOld), ordered by name.</summary>
    public static IReadOnlyList<CalicoMapName> ListPins(string pinDirectory)
    {
        var result = new List<CalicoMapName>();
        foreach (string path in Directory.EnumerateFileSystemEntries(pinDirectory))
        {
            CalicoMapName? parsed = Parse(System.IO.Path.GetFileName(path));
            if (parsed is not null)
            {
                result.Add(parsed);
            }
        }

        result.Sort((a, b) => string.CompareOrdinal(a.PinName, b.PinName));
        return result;
    }

    /// <summary>The live map of a family: the highest version pinned, skipping _old pins. Null when none is pinned.</summary>
    public static CalicoMapName? FindLatest(IEnumerable<CalicoMapName> pins, string baseName)
    {
        CalicoMapName? best = null;
        foreach (CalicoMapName pin in pins)
        {
            if (!pin.IsOld && pin.BaseName == baseName && (best is null || pin.Version > best.Version))
            {
                best = pin;
            }
        }

        return best;
    }
}
