namespace CalicoBpf.Metrics;

/// <summary>
/// What one node gave for the metrics: its counters, its maps (with fill) and its rules' hit counts, and
/// each counter's reason in Calico's words for the node's release (by counter id).
/// </summary>
public sealed record NodeMetrics(string Node, IReadOnlyList<InterfaceCounter> Counters, IReadOnlyList<MapInfo> Maps, IReadOnlyList<PolicyRule> Rules,
    IReadOnlyDictionary<string, string> Reasons);

/// <summary>
/// Calico's dataplane state as Prometheus text (exposition format 0.0.4, as node_exporter's textfile
/// collector and a Pushgateway read it): one family per metric, its HELP and TYPE first and all its
/// samples together, over every node; names in snake case with the calicobpf_ prefix, counters ending
/// in _total, the unit in the name, label values escaped (backslash, quote, newline). Families:
/// <list type="bullet">
/// <item>calicobpf_interface_packets_total: every Calico counter (cali_counters), by node, interface, hook, category and counter;</item>
/// <item>calicobpf_dropped_packets_total: the Dropped ones, by reason in Calico's words;</item>
/// <item>calicobpf_policy_rule_hits_total: the rule counters (cali_rule_ctrs), by tier, policy, rule and action;</item>
/// <item>calicobpf_map_entries, calicobpf_map_max_entries, calicobpf_map_fill_ratio: each map's fill (gauges).</item>
/// </list>
/// </summary>
public static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Write(IEnumerable<NodeMetrics> nodes)
    {
        List<NodeMetrics> all = nodes.OrderBy(n => n.Node, StringComparer.Ordinal).ToList();
        var text = new StringBuilder();

        Family(text, "calicobpf_interface_packets_total", "counter", "Packets Calico's programs counted per interface, hook and counter (cali_counters, summed over CPUs).",
            all.SelectMany(n => n.Counters.SelectMany(c => Hooks(c).Select(h => (Labels(("node", n.Node), ("interface", c.Interface), ("hook", h.Hook), ("category", c.Category.ToString().ToLowerInvariant()), ("counter", c.Id)), (double)h.Value)))));

        Family(text, "calicobpf_dropped_packets_total", "counter", "Packets Calico's programs dropped per interface, hook and reason (the Dropped counters of cali_counters).",
            all.SelectMany(n => n.Counters.Where(c => c.Category == CounterCategory.Dropped)
                .SelectMany(c => Hooks(c).Select(h => (Labels(("node", n.Node), ("interface", c.Interface), ("hook", h.Hook), ("reason", n.Reasons.TryGetValue(c.Id, out string? words) ? words : c.Name)), (double)h.Value)))));

        // A rule's counter is Calico's by match id (one per rule, whatever interfaces it is on): one sample per match id.
        Family(text, "calicobpf_policy_rule_hits_total", "counter", "Packets that matched a policy rule (cali_rule_ctrs, by the rule's match id, summed over CPUs).",
            all.SelectMany(n => n.Rules.Where(r => r.MatchId is not null && r.HitCount is not null)
                .GroupBy(r => r.MatchId!.Value).Select(g => g.First())
                .Select(r => (Labels(("node", n.Node), ("tier", r.Tier), ("policy", r.Policy.Length > 0 ? r.Policy : "(end of tier)"), ("rule", r.Index.ToString(CultureInfo.InvariantCulture)),
                    ("action", r.Action), ("match_id", r.MatchId!.Value.ToString(CultureInfo.InvariantCulture))), (double)r.HitCount!.Value))));

        Family(text, "calicobpf_map_entries", "gauge", "Entries in a Calico BPF map.",
            all.SelectMany(n => n.Maps.Where(m => m.Entries is not null).Select(m => (Labels(("node", n.Node), ("map", m.Name)), (double)m.Entries!.Value))));
        Family(text, "calicobpf_map_max_entries", "gauge", "The size a Calico BPF map was created with (max_entries).",
            all.SelectMany(n => n.Maps.Select(m => (Labels(("node", n.Node), ("map", m.Name)), (double)m.MaxEntries))));
        Family(text, "calicobpf_map_fill_ratio", "gauge", "How full a Calico BPF hash map is (entries / max_entries, 0 to 1).",
            all.SelectMany(n => n.Maps.Where(m => m.FillPercent is not null && m.Entries is not null && m.MaxEntries > 0)
                .Select(m => (Labels(("node", n.Node), ("map", m.Name)), (double)m.Entries!.Value / m.MaxEntries))));
        return text.ToString();
    }

    private static IEnumerable<(string Hook, ulong Value)> Hooks(InterfaceCounter c)
    {
        if (c.Ingress is { } i)
        {
            yield return ("ingress", i);
        }

        if (c.Egress is { } e)
        {
            yield return ("egress", e);
        }

        if (c.Xdp is { } x)
        {
            yield return ("xdp", x);
        }
    }

    private static void Family(StringBuilder text, string name, string type, string help, IEnumerable<(string Labels, double Value)> samples)
    {
        var lines = samples.Select(s => $"{name}{{{s.Labels}}} {Value(s.Value)}").Distinct(StringComparer.Ordinal).ToList();
        if (lines.Count == 0)
        {
            return;
        }

        text.Append("# HELP ").Append(name).Append(' ').Append(help.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal)).Append('\n');
        text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        foreach (string line in lines)
        {
            text.Append(line).Append('\n');
        }
    }

    private static string Labels(params (string Name, string Value)[] labels) =>
        string.Join(",", labels.Select(l => $"{l.Name}=\"{Escape(l.Value)}\""));

    /// <summary>A label value as the format writes it: backslash, double quote and newline escaped.</summary>
    public static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Value(double v) =>
        double.IsPositiveInfinity(v) ? "+Inf" : double.IsNegativeInfinity(v) ? "-Inf" : double.IsNaN(v) ? "NaN"
        : v == Math.Floor(v) && Math.Abs(v) < 1e15 ? v.ToString("0", CultureInfo.InvariantCulture) : v.ToString("R", CultureInfo.InvariantCulture);
}
