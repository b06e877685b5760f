using System.Text.RegularExpressions;
using CalicoBpf.Metrics;

namespace CalicoBpf.Tests;

/// <summary>
/// Export-BpfMetric's text against the Prometheus exposition format (0.0.4, text): the grammar of every
/// line, one HELP and TYPE per family before all its samples, counters named _total, label values escaped.
/// </summary>
public sealed class PrometheusTextTests
{
    private static readonly Regex Sample = new(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*=""(?:[^""\\\n]|\\[\\""n])*"",?)*)\} (?<value>-?[0-9.eE+-]+|NaN|[+-]Inf)$", RegexOptions.CultureInvariant);

    private static NodeMetrics Node(string name, string iface = "eth0") => new(name,
        new[]
        {
            new InterfaceCounter { Node = name, Interface = iface, IfIndex = 2, Category = CounterCategory.Dropped, Id = "DroppedByPolicy", Name = "by policy", Index = 4, Ingress = 412, Egress = 0 },
            new InterfaceCounter { Node = name, Interface = iface, IfIndex = 2, Category = CounterCategory.Total, Id = "TotalPackets", Name = "packets", Index = 0, Ingress = 9000, Egress = 8000, Xdp = 5 },
        },
        new[] { new MapInfo { Node = name, Name = "cali_v4_ct4", MaxEntries = 512000, Entries = 128000, FillPercent = 25 } },
        new[]
        {
            new PolicyRule { Node = name, Interface = "cali1", Tier = "default", Policy = "shop/knp.default.deny \"all\"", Index = 0, Action = "deny", MatchId = 7, HitCount = 33 },
            new PolicyRule { Node = name, Interface = "cali2", Tier = "default", Policy = "shop/knp.default.deny \"all\"", Index = 0, Action = "deny", MatchId = 7, HitCount = 33 },
        },
        new Dictionary<string, string> { ["DroppedByPolicy"] = "dropped by policy" });

    [Fact]
    public void Every_line_is_a_comment_or_a_sample_of_the_family_announced_before_it()
    {
        string text = PrometheusText.Write(new[] { Node("node-b", "cali\\x"), Node("node-a") });
        Assert.EndsWith("\n", text, StringComparison.Ordinal);
        var families = new List<string>();
        string? current = null;
        foreach (string line in text.TrimEnd('\n').Split('\n'))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                current = line.Split(' ')[2];
                Assert.DoesNotContain(current, families);
                families.Add(current);
                continue;
            }

            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                string[] parts = line.Split(' ');
                Assert.Equal(current, parts[2]);
                Assert.Contains(parts[3], new[] { "counter", "gauge" });
                Assert.Equal(parts[3] == "counter", current!.EndsWith("_total", StringComparison.Ordinal));
                continue;
            }

            Match m = Sample.Match(line);
            Assert.True(m.Success, $"not a sample line: {line}");
            Assert.Equal(current, m.Groups["name"].Value);
        }

        Assert.Equal(new[] { "calicobpf_interface_packets_total", "calicobpf_dropped_packets_total", "calicobpf_policy_rule_hits_total",
            "calicobpf_map_entries", "calicobpf_map_max_entries", "calicobpf_map_fill_ratio" }, families);
        Assert.All(families, f => Assert.StartsWith("calicobpf_", f, StringComparison.Ordinal));
    }

    [Fact]
    public void Values_labels_and_escapes_are_what_was_read()
    {
        string text = PrometheusText.Write(new[] { Node("node-b", "cali\\x"), Node("node-a") });
        Assert.Contains("calicobpf_interface_packets_total{node=\"node-a\",interface=\"eth0\",hook=\"ingress\",category=\"total\",counter=\"TotalPackets\"} 9000\n", text, StringComparison.Ordinal);
        Assert.Contains("calicobpf_interface_packets_total{node=\"node-a\",interface=\"eth0\",hook=\"xdp\",category=\"total\",counter=\"TotalPackets\"} 5\n", text, StringComparison.Ordinal);
        Assert.Contains("calicobpf_dropped_packets_total{node=\"node-b\",interface=\"cali\\\\x\",hook=\"ingress\",reason=\"dropped by policy\"} 412\n", text, StringComparison.Ordinal);
        // No two samples of a family share a label set (what Prometheus would reject as a duplicate series).
        var series = text.Split('\n').Where(l => l.Length > 0 && l[0] != '#').Select(l => l[..l.LastIndexOf(' ')]).ToList();
        Assert.Equal(series.Count, series.Distinct(StringComparer.Ordinal).Count());
        // One sample per rule counter (Calico keys it by match id alone), its quotes escaped.
        Assert.Single(Regex.Matches(text, "^calicobpf_policy_rule_hits_total\\{node=\"node-a\"", RegexOptions.Multiline));
        Assert.Contains("policy=\"shop/knp.default.deny \\\"all\\\"\",rule=\"0\",action=\"deny\",match_id=\"7\"} 33\n", text, StringComparison.Ordinal);
        Assert.Contains("calicobpf_map_fill_ratio{node=\"node-a\",map=\"cali_v4_ct4\"} 0.25\n", text, StringComparison.Ordinal);
        // Nodes in name order within each family.
        Assert.True(text.IndexOf("node=\"node-a\"", StringComparison.Ordinal) < text.IndexOf("node=\"node-b\"", StringComparison.Ordinal));
        Assert.Equal("a\\\\b\\\"c\\nd", PrometheusText.Escape("a\\b\"c\nd"));
    }

    [Fact]
    public void No_node_no_family()
    {
        Assert.Equal(string.Empty, PrometheusText.Write(Array.Empty<NodeMetrics>()));
    }
}
