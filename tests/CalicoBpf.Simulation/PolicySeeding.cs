using System.Globalization;
using System.Text;
using System.Text.Json;
using CalicoBpf.Interop;
using CalicoBpf.Maps;

namespace CalicoBpf.Simulation;

/// <summary>A policy program of the scenario: the tiers, policies and rules Felix would build for one interface hook.</summary>
public sealed class PolicySpec
{
    public string Interface { get; set; } = string.Empty;
    public string Hook { get; set; } = "ingress";
    public List<TierSpec> Tiers { get; set; } = new();

    public sealed class TierSpec
    {
        public string Name { get; set; } = "default";
        public List<PolicyRulesSpec> Policies { get; set; } = new();
    }

    public sealed class PolicyRulesSpec
    {
        public string Name { get; set; } = string.Empty;
        public List<RuleSpec> Rules { get; set; } = new();
    }

    public sealed class RuleSpec
    {
        public string Action { get; set; } = "allow";
        public string? Protocol { get; set; }
        public List<int> Ports { get; set; } = new();
        public List<string> Sources { get; set; } = new();
        public ulong MatchId { get; set; }
        public ulong Hits { get; set; }
    }
}

/// <summary>
/// Writes policy debug files in Felix's shape (instructions carrying the comments Felix writes while
/// building a policy program) and the matching rule counters, for simulated nodes and the demo.
/// </summary>
public static class PolicySeeding
{
    public static void Write(IEnumerable<PolicySpec> programs, string directory, BpfMap? ruleCounters)
    {
        Directory.CreateDirectory(directory);
        foreach (PolicySpec program in programs)
        {
            var insns = new List<object>();

            // A workload's program as Felix builds it without host endpoints: no host stages, so the
            // builder's label allowed_by_host_policy starts the workload tiers (pol_prog_builder.go).
            // A host endpoint's (an interface not named cali*) holds normal host tiers: the to-or-from-host
            // jump (and r?, FlagSrcIsHost|FlagDestIsHost), the label to_or_from_host before its tiers, and
            // allowed_by_host_policy after them (pol_prog_builder.go:243-287 at v3.30.7; no pre-DNAT or
            // apply-on-forward tiers).
            bool host = !program.Interface.StartsWith("cali", StringComparison.Ordinal);
            string[] labels = { host ? "to_or_from_host" : "allowed_by_host_policy" };
            void Comment(string text)
            {
                insns.Add(new { inst = new[] { 0xb7, 1, 0, 0, 0, 0, 0, 0 }, labels, comments = new[] { text }, annotation = string.Empty });
                labels = Array.Empty<string>();
            }

            if (host)
            {
                insns.Add(new { inst = new[] { 0x57, 2, 0, 0, 0x0c, 0, 0, 0 }, labels = Array.Empty<string>(), comments = Array.Empty<string>(), annotation = string.Empty });
            }

            foreach (PolicySpec.TierSpec tier in program.Tiers)
            {
                Comment($"Start of tier \"{tier.Name}\"");
                foreach (PolicySpec.PolicyRulesSpec policy in tier.Policies)
                {
                    Comment($"Start of policy \"{policy.Name}\"");
                    foreach (PolicySpec.RuleSpec rule in policy.Rules)
                    {
                        string text = RuleText(rule);
                        Comment("Start of rule \"" + text.Replace("\"", "\\\"", StringComparison.Ordinal) + "\"");
                        Comment("Rule MatchID: " + rule.MatchId.ToString(CultureInfo.InvariantCulture));
                        if (rule.Protocol is not null)
                        {
                            Comment($"If protocol != {rule.Protocol.ToLowerInvariant()},skip to next rule");
                        }

                        if (rule.Sources.Count > 0)
                        {
                            Comment($"If source not in {string.Join(',', rule.Sources)},, skip to next rule");
                        }

                        if (rule.Ports.Count > 0)
                        {
                            Comment($"If dest port is not within any of [{string.Join(' ', rule.Ports)}], skip to next rule");
                        }

                        if (ruleCounters is not null && rule.MatchId != 0)
                        {
                            WriteCounter(ruleCounters, rule.MatchId, rule.Hits);
                        }
                    }

                    Comment($"End of policy \"{policy.Name}\"");
                }

                // As Felix writes it from v3.30 (pol_prog_builder.go: "End of tier %s: %s"); the simulated node is a newer release.
                Comment($"End of tier {tier.Name}: deny");
            }

            if (host)
            {
                labels = new[] { "allowed_by_host_policy" };
                Comment("Allowed by host policy");
            }

            var doc = new { ifacename = program.Interface, hook = program.Hook, policyInfo = insns, error = string.Empty };
            PolicyHook hook = Enum.Parse<PolicyHook>(program.Hook, ignoreCase: true);
            File.WriteAllText(Path.Combine(directory, PolicyDebug.FileName(program.Interface, hook, ipv6: false)), JsonSerializer.Serialize(doc), new UTF8Encoding(false));
        }
    }

    /// <summary>The rule as Felix's %q of the protobuf rule prints it (the parts the scenario sets).</summary>
    private static string RuleText(PolicySpec.RuleSpec r)
    {
        var sb = new StringBuilder();
        sb.Append("action:\"").Append(r.Action).Append('"');
        if (r.Protocol is not null)
        {
            sb.Append(" protocol:{name:\"").Append(r.Protocol.ToLowerInvariant()).Append("\"}");
        }

        foreach (string s in r.Sources)
        {
            sb.Append(" src_net:\"").Append(s).Append('"');
        }

        foreach (int p in r.Ports)
        {
            sb.Append(" dst_ports:{first:").Append(p).Append(" last:").Append(p).Append('}');
        }

        return sb.ToString();
    }

    private static void WriteCounter(BpfMap map, ulong matchId, ulong hits)
    {
        int cpus = KernelInfo.PossibleCpuCount;
        byte[] value = new byte[8 * cpus];
        BitConverter.TryWriteBytes(value, hits);
        map.Update(BitConverter.GetBytes(matchId), value);
    }
}
