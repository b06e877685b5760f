using CalicoBpf.Cluster;
using CalicoBpf.Interop;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// 11. Capacity per node: every Calico map Felix fills (hash, LRU and LPM maps; not arrays, program
/// arrays or ring buffers) above 90 % full, each with what happens when it is full and what grows it:
/// the FelixConfiguration field that sizes it (../shared/reference/calico-bpf-maps.md, 1 and 1.5), or
/// "fixed" where Calico's code sizes it. A map Felix cannot add to once it is full (not LRU) at 100 %
/// is a failure. Where bpfMapSizePerCpuConntrack is set (v3.30), it sizes conntrack (times the node's
/// possible CPUs) and is the field to raise. Conntrack from v3.30 grows itself (bpfMapSizeConntrackScaling DoubleIfFull: Felix's
/// scanner writes the doubled size to /var/lib/calico/bpf_ct_map_size, used when calico-node restarts).
/// </summary>
public sealed class CapacityCheck : Check
{
    public const double Threshold = 90;

    /// <summary>Where Felix's conntrack scanner leaves the doubled size for the next start.</summary>
    public const string ConntrackSizeFile = "/var/lib/calico/bpf_ct_map_size";

    /// <summary>
    /// Per base name: the Set-FelixBpfConfig parameter that sizes it (null: fixed in Calico's code), what
    /// its entries are (an LRU map evicts them), and what stops when a map that does not evict is full.
    /// </summary>
    private static readonly Dictionary<string, (string? Field, string Entries, string Full)> Maps = new(StringComparer.Ordinal)
    {
        ["cali_v4_ct"] = ("BpfMapSizeConntrack", "connections", "new connections cannot be tracked"),
        ["cali_v6_ct"] = ("BpfMapSizeConntrack", "connections", "new connections cannot be tracked"),
        ["cali_v4_ccq"] = ("BpfMapSizeConntrackCleanupQueue", "NAT connections", "NAT connections cannot be queued for cleanup"),
        ["cali_v6_ccq"] = ("BpfMapSizeConntrackCleanupQueue", "NAT connections", "NAT connections cannot be queued for cleanup"),
        ["cali_v4_nat_fe"] = ("BpfMapSizeNATFrontend", "frontends", "Felix cannot add new service frontends"),
        ["cali_v6_nat_fe"] = ("BpfMapSizeNATFrontend", "frontends", "Felix cannot add new service frontends"),
        ["cali_v4_nat_be"] = ("BpfMapSizeNATBackend", "backends", "Felix cannot add new service backends"),
        ["cali_v6_nat_be"] = ("BpfMapSizeNATBackend", "backends", "Felix cannot add new service backends"),
        ["cali_v4_nat_aff"] = ("BpfMapSizeNATAffinity", "session affinities", "no new session affinity is kept"),
        ["cali_v6_nat_aff"] = ("BpfMapSizeNATAffinity", "session affinities", "no new session affinity is kept"),
        ["cali_v4_mglv"] = ("BpfMaglevMaxServices", "Maglev slots", "Felix cannot add the Maglev lookup tables of new services"),
        ["cali_v6_mglv"] = ("BpfMaglevMaxServices", "Maglev slots", "Felix cannot add the Maglev lookup tables of new services"),
        ["cali_v4_routes"] = ("BpfMapSizeRoute", "routes", "Felix cannot add new routes (new pods and nodes are not reachable)"),
        ["cali_v6_routes"] = ("BpfMapSizeRoute", "routes", "Felix cannot add new routes (new pods and nodes are not reachable)"),
        ["cali_v4_ip_sets"] = ("BpfMapSizeIPSets", "IP set members", "Felix cannot add new IP set members (policies miss new pods)"),
        ["cali_v6_ip_sets"] = (null, "IP set members", "Felix cannot add new IP set members (policies miss new pods)"),
        ["cali_iface"] = ("BpfMapSizeIfState", "interfaces", "Felix cannot add new interfaces (new pods get no programs; entries of interfaces that are gone fill it, Calico issue #6935)"),
    };

    public override string Id => "capacity";

    public override string Title => "Calico's maps have room";

    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context) =>
        context.Local is { } local
            ? OnLocal(local, l => For(l, l.Node, null, null))
            : PerNode(context, node =>
            {
                context.Require("exec into calico-node");
                string? scaling = null;
                long? perCpu = null;
                try
                {
                    var effective = context.Effective(node);
                    scaling = effective.TryGetValue("bpfMapSizeConntrackScaling", out FelixEffectiveValue? v) ? v.Value : null;
                    perCpu = effective.TryGetValue("bpfMapSizePerCpuConntrack", out FelixEffectiveValue? p)
                        && long.TryParse(p.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) && n > 0 ? n : null;
                }
                catch (CheckUnavailableException)
                {
                    // Without the cluster's configuration, the release's default is what Felix uses.
                }

                return For(context.Dataplane(node), node.Node, scaling, perCpu);
            });

    /// <param name="perCpuConntrack">bpfMapSizePerCpuConntrack where it is set (above 0): it sizes conntrack instead of bpfMapSizeConntrack (v3.30).</param>
    private CheckResult For(Transport.INodeDataplane node, string name, string? scaling, long? perCpuConntrack)
    {
        var maps = MapInventory.List(node, n => !n.EndsWith("_old", StringComparison.Ordinal))
            .Where(m => m.FillPercent is not null && m.Entries is > 0 && !m.Type.IsArray())
            .OrderByDescending(m => m.FillPercent).ThenBy(m => m.Name, StringComparer.Ordinal).ToList();
        string evidence = string.Join("; ", maps.Select(m => $"{m.Name} {m.Entries}/{m.MaxEntries} ({m.FillPercent}%)"));
        var full = maps.Where(m => m.FillPercent >= Threshold).ToList();
        if (full.Count == 0)
        {
            return Result(CheckStatus.Pass, $"Every Calico map is below {Threshold} % full.", name, evidence.Length > 0 ? evidence : "no map holds entries");
        }

        CalicoRelease release = ReleaseInference.Of(node).Release;
        bool selfGrowing = release.AtLeast(3, 30) && !string.Equals(scaling, "Disabled", StringComparison.OrdinalIgnoreCase);
        var effects = new List<string>();
        var fixes = new List<string>();
        bool failing = false;
        foreach (MapInfo m in full)
        {
            bool lru = m.Type is BpfMapType.LruHash or BpfMapType.LruPerCpuHash;
            (string? field, string entries, string whenFull) = Maps.TryGetValue(m.BaseName, out var known) ? known : (null, "entries", "no new entry can be added");
            failing |= !lru && m.Entries >= m.MaxEntries;
            effects.Add(lru
                ? $"{m.Name} {m.FillPercent}% (LRU: when full the kernel evicts the least recently used entries, so {entries} lose their state)"
                : $"{m.Name} {m.FillPercent}% (when full {whenFull})");
            string grow = (m.MaxEntries * 2L).ToString(CultureInfo.InvariantCulture);
            if (field == "BpfMapSizeConntrack" && perCpuConntrack is { } perCpu)
            {
                // The size is that value times the node's possible CPUs: doubling it doubles the map.
                (field, grow) = ("BpfMapSizePerCpuConntrack", (perCpu * 2).ToString(CultureInfo.InvariantCulture));
            }

            if (field is "BpfMapSizeConntrack" or "BpfMapSizePerCpuConntrack" && selfGrowing)
            {
                fixes.Add(ConntrackGrowth(node, m, field, grow));
            }
            else if (field is not null)
            {
                fixes.Add($"Set-FelixBpfConfig -{field} {(field == "BpfMaglevMaxServices" ? "<more services>" : grow)}  (Felix restarts to resize)");
            }
            else
            {
                fixes.Add($"{m.Name} has a size fixed in Calico's code: find what fills it (Get-BpfMap {m.Name}, and the objects of its family)");
            }
        }

        return Result(failing ? CheckStatus.Fail : CheckStatus.Warning,
            $"Above {Threshold} % full: {string.Join(", ", effects)}.", name, evidence, string.Join("; ", fixes.Distinct()));
    }

    /// <summary>From v3.30 Felix doubles conntrack itself; what it has already decided is in its size file.</summary>
    private static string ConntrackGrowth(Transport.INodeDataplane node, MapInfo map, string field, string doubled)
    {
        string? written = null;
        try
        {
            written = node.ReadTextFile(ConntrackSizeFile)?.Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Transport.NodeCommandException)
        {
            // Not readable here: say what Felix does, not what it did.
        }

        return long.TryParse(written, NumberStyles.Integer, CultureInfo.InvariantCulture, out long next) && next > map.MaxEntries
            ? $"Felix has doubled {map.Name} already ({ConntrackSizeFile} holds {next}, bpfMapSizeConntrackScaling DoubleIfFull): restart calico-node on the node to use it"
            : $"Felix doubles {map.Name} itself when it is nearly full (bpfMapSizeConntrackScaling DoubleIfFull, {ConntrackSizeFile}) and uses the new size when calico-node restarts; to size it now: Set-FelixBpfConfig -{field} {doubled}  (Felix restarts to resize)";
    }
}
