using CalicoBpf.Cluster;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>11. Capacity per node: conntrack, NAT and route maps above 90 % full.</summary>
public sealed class CapacityCheck : Check
{
    public const double Threshold = 90;
    private static readonly string[] Families = { MapCatalog.ConntrackV4, MapCatalog.ConntrackV6, "cali_v4_nat_fe", "cali_v4_nat_be", "cali_v4_routes", "cali_v6_routes" };

    public override string Id => "capacity";

    public override string Title => "Conntrack, NAT and route maps have room";

    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        return OnEachDataplane(context, For);
    }

    private CheckResult For(Transport.INodeDataplane node, string name)
    {
        var maps = MapInventory.List(node, n => Families.Any(f => n.StartsWith(f, StringComparison.Ordinal)) && !n.EndsWith("_old", StringComparison.Ordinal))
            .Where(m => m.FillPercent is not null).ToList();
        string evidence = string.Join("; ", maps.Select(m => $"{m.Name} {m.Entries}/{m.MaxEntries} ({m.FillPercent}%)"));
        var full = maps.Where(m => m.FillPercent >= Threshold).ToList();
        if (full.Count == 0)
        {
            return Result(CheckStatus.Pass, $"Every conntrack, NAT and route map is below {Threshold} % full.", name, evidence);
        }

        string field = full[0].BaseName switch
        {
            "cali_v4_nat_fe" => "BpfMapSizeNATFrontend",
            "cali_v4_nat_be" => "BpfMapSizeNATBackend",
            "cali_v4_routes" or "cali_v6_routes" => "BpfMapSizeRoute",
            _ => "BpfMapSizeConntrack",
        };
        return Result(CheckStatus.Warning, $"Above {Threshold} % full: {string.Join(", ", full.Select(m => $"{m.Name} {m.FillPercent}%"))}. New entries will fail when it is full.",
            name, evidence, $"Set-FelixBpfConfig -{field} {(full[0].MaxEntries * 2L).ToString(CultureInfo.InvariantCulture)}  (Felix restarts to resize)");
    }
}
