using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// 10. Drops per node: non-zero Dropped counters (top interfaces and reasons) and clsact qdisc drops.
/// An interface whose Calico programs are attached with TCX or netkit has no clsact qdisc, so tc -s
/// qdisc (the guide's count) shows nothing for it: its drops come from Calico's counters map alone,
/// and the result says so.
/// </summary>
public sealed class DropsCheck : Check
{
    public override string Id => "drops";

    public override string Title => "No packets dropped";

    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        return OnEachDataplane(context, For);
    }

    private CheckResult For(Transport.INodeDataplane node, string name)
    {
        var counters = CounterReader.Read(node)
            .Where(c => c.Category == CounterCategory.Dropped)
            .Select(c => (c.IfIndex, c.Interface, c.Name, Count: (c.Ingress ?? 0) + (c.Egress ?? 0) + (c.Xdp ?? 0)))
            .ToList();
        var drops = counters.Where(d => d.Count > 0).OrderByDescending(d => d.Count).ToList();
        IReadOnlyList<QdiscStatistic> allQdiscs = node.ListQdiscs();
        var qdiscs = allQdiscs.Where(q => q.Kind == "clsact" && q.Drops > 0).ToList();
        string fallback = WithoutClsact(node, allQdiscs, counters, out bool some);
        if (drops.Count == 0 && qdiscs.Count == 0)
        {
            return Result(CheckStatus.Pass, "No Dropped counter and no clsact qdisc drop is above zero" +
                (some ? "; on interfaces attached with TCX or netkit, which have no clsact qdisc, only the counters map counts drops." : "."), name, fallback);
        }

        string top = string.Join(", ", drops.Take(5).Select(d => $"{d.Interface} {d.Name} {d.Count.ToString("N0", CultureInfo.InvariantCulture)}"));
        string tc = string.Join(", ", qdiscs.Select(q => $"{q.Interface} clsact {q.Drops} drops"));
        string evidence = string.Join("; ", new[] { top, tc, fallback }.Where(s => s.Length > 0));
        return Result(CheckStatus.Warning, $"Packets are being dropped: {drops.Sum(d => (decimal)d.Count).ToString("N0", CultureInfo.InvariantCulture)} by Calico's programs{(qdiscs.Count > 0 ? ", and by qdiscs" : string.Empty)}.",
            name, evidence, $"Get-BpfCounter -Node {name} | Where-Object Category -eq Dropped; Get-BpfTraceLog -Node {name} (with Use-FelixBpfDebugLog) shows why");
    }

    /// <summary>
    /// The interfaces that carry Calico programs but no clsact qdisc (attached with TCX or netkit), with
    /// their drops from the counters map; and what the node cannot see. Empty when every Calico program
    /// hangs on a clsact qdisc.
    /// </summary>
    private static string WithoutClsact(Transport.INodeDataplane node, IReadOnlyList<QdiscStatistic> qdiscs,
        IReadOnlyList<(int IfIndex, string Interface, string Name, ulong Count)> counters, out bool some)
    {
        some = false;
        AttachmentListing listing;
        try
        {
            listing = node.ListAttachments();
        }
        catch (Exception ex) when (ex is Interop.BpfException or Transport.NodeCommandException or InvalidDataException or System.Text.Json.JsonException)
        {
            return $"the programs attached to the interfaces could not be listed ({ex.Message.TrimEnd('.')}), so drops on interfaces without a clsact qdisc (TCX, netkit) are only in the counters above";
        }

        var clsact = qdiscs.Where(q => q.Kind == "clsact").Select(q => q.Interface).ToHashSet(StringComparer.Ordinal);
        var bare = listing.Attachments.Where(a => a.IsCalico && !clsact.Contains(a.Interface))
            .GroupBy(a => (a.IfIndex, a.Interface))
            .Select(g => (g.Key.Interface, Kind: g.Aggregate(AttachKind.None, (k, a) => k | a.Kind),
                Drops: counters.Where(c => c.IfIndex == g.Key.IfIndex).Aggregate(0UL, (n, c) => n + c.Count)))
            .ToList();
        var parts = new List<string>();
        if (bare.Count > 0)
        {
            some = true;
            string list = string.Join(", ", bare.Take(5).Select(b => $"{b.Interface} ({b.Kind}) {b.Drops.ToString("N0", CultureInfo.InvariantCulture)}")) + (bare.Count > 5 ? $" and {bare.Count - 5} more" : string.Empty);
            parts.Add($"no clsact qdisc on {bare.Count} interface{(bare.Count == 1 ? string.Empty : "s")} with Calico programs attached with TCX or netkit (bpfAttachType), where tc -s qdisc counts no drops; their drops from the counters map: {list}");
        }

        // Only where Felix's link pins show that programs are attached there unseen: a node whose old
        // bpftool sees no TCX or netkit and has no such pin runs a release that attaches with TC only.
        if (listing.UnseenLinkPins > 0 && listing.UnseenReason is { } why)
        {
            parts.Add(why.TrimEnd('.'));
        }

        return string.Join("; ", parts);
    }
}
