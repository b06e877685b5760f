namespace CalicoBpf.Flow;

/// <summary>A policy program read back from Felix's policy debug file, with the 64-bit ids of the IP sets its rules name.</summary>
public sealed record DebugProgram(PolicyProgram Program, IReadOnlyDictionary<string, ulong> IpSetIds, IReadOnlyList<string> Problems)
{
    /// <summary>The error Felix recorded in the file (it writes the file even when building or attaching the program failed); empty when none.</summary>
    public string Error { get; init; } = string.Empty;
}

/// <summary>
/// Rebuilds the PolicyProgram Felix compiled from its policy debug file
/// (/var/run/calico/bpf/policy/IFACE_DIR_vN.json), following where
/// felix/bpf/polprog/pol_prog_builder.go (Instructions, v3.30.7 and v3.32.1) puts each part:
/// tiers before the to-or-from-host jump (AND of the state flags with FlagSrcIsHost |
/// FlagDestIsHost, 0x0c) are pre-DNAT host tiers, tiers after it apply-on-forward tiers; the
/// label to_or_from_host starts normal host tiers and host profiles (no such label: the program
/// was built with SuppressNormalHostPolicy); the label allowed_by_host_policy starts workload
/// tiers and profiles. An XDP program holds only normal host tiers. Profiles have no policy
/// comments: their rules follow the last tier of their stage. IP set names map to ids through
/// each rule's "IPSets" comment (it names src, not-src, dst and not-dst sets, not named-port sets).
/// </summary>
public static partial class PolicyDebugProgram
{
    private enum Stage
    {
        PreDnat,
        Forward,
        Normal,
        Workload,
    }

    // The comment formats are PolicyDebug's (Maps), which Get-BpfPolicy reads too.
    [GeneratedRegex(@"(?<f>not_src_ip_set_ids|src_ip_set_ids|not_dst_ip_set_ids|dst_ip_set_ids):<(?<ids>[^>]*)>")]
    private static partial Regex IpSetsComment();

    public static DebugProgram Read(string json, bool forHostInterface, bool ipv6)
    {
        using JsonDocument doc = JsonDocument.Parse(json.TrimStart('\uFEFF'));
        JsonElement root = doc.RootElement;
        string hook = root.TryGetProperty("hook", out JsonElement h) && h.ValueKind == JsonValueKind.String ? h.GetString() ?? string.Empty : string.Empty;
        bool xdp = hook.EndsWith("xdp", StringComparison.OrdinalIgnoreCase);
        var problems = new List<string>();
        string error = root.TryGetProperty("error", out JsonElement err) && err.ValueKind == JsonValueKind.String ? err.GetString() ?? string.Empty : string.Empty;
        if (error.Length > 0)
        {
            problems.Add($"Felix recorded an error building this program: {error}");
        }

        var tiers = new Dictionary<Stage, List<PolicyTier>> { [Stage.PreDnat] = new(), [Stage.Forward] = new(), [Stage.Normal] = new(), [Stage.Workload] = new() };
        var profiles = new Dictionary<Stage, List<PolicyProgramRule>> { [Stage.Normal] = new(), [Stage.Workload] = new() };
        var ids = new Dictionary<string, ulong>(StringComparer.Ordinal);
        Stage stage = xdp ? Stage.Normal : Stage.PreDnat;
        bool sawToOrFromHost = false;
        bool sawAllowedByHost = false;

        string? tierName = null;
        Stage tierStage = stage;
        Stage ruleStage = stage;
        List<PolicyBlock>? tierPolicies = null;
        string? policyName = null;
        List<PolicyProgramRule>? policyRules = null;
        RuleMatch? rule = null;
        ulong? matchId = null;

        void CloseRule()
        {
            if (rule is null)
            {
                return;
            }

            var r = new PolicyProgramRule(rule, matchId);
            if (policyRules is not null)
            {
                policyRules.Add(r);
            }
            else if (profiles.TryGetValue(ruleStage, out List<PolicyProgramRule>? p))
            {
                p.Add(r);
            }
            else
            {
                problems.Add($"a rule outside any policy in the {ruleStage} stage is left out: {rule.Text}");
            }

            rule = null;
            matchId = null;
        }

        void ClosePolicy()
        {
            CloseRule();
            if (policyName is not null && tierPolicies is not null)
            {
                tierPolicies.Add(new PolicyBlock(policyName, policyRules!));
            }

            policyName = null;
            policyRules = null;
        }

        if (!root.TryGetProperty("policyInfo", out JsonElement info) || info.ValueKind != JsonValueKind.Array)
        {
            problems.Add("the file holds no instructions (policyInfo)");
            return new DebugProgram(new PolicyProgram { IpVersion = ipv6 ? 6 : 4, ForHostInterface = forHostInterface, ForXdp = xdp }, ids, problems) { Error = error };
        }

        // Between "Splitting program after N jumps" and the next "##### Start of program" Felix writes a
        // landing pad for every jump target still open (pol_prog_builder.go:1142-1175 at v3.30.7): its labels
        // (to_or_from_host, allowed_by_host_policy among them) only hand over to the next program, and start no stage.
        bool landingPads = false;
        foreach (JsonElement insn in info.EnumerateArray())
        {
            if (insn.TryGetProperty("comments", out JsonElement said) && said.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement c in said.EnumerateArray())
                {
                    string text = c.GetString() ?? string.Empty;
                    if (text.StartsWith("Splitting program after ", StringComparison.Ordinal))
                    {
                        landingPads = true;
                    }
                    else if (text.StartsWith("##### Start of program", StringComparison.Ordinal))
                    {
                        landingPads = false;
                    }
                }
            }

            if (!landingPads && insn.TryGetProperty("labels", out JsonElement labels) && labels.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement l in labels.EnumerateArray())
                {
                    switch (l.GetString())
                    {
                        // A label starts what follows it; comments on the same instruction may still end what
                        // came before (End of tier ...), so each tier and rule keeps the stage it started in.
                        case "to_or_from_host":
                            stage = Stage.Normal;
                            sawToOrFromHost = true;
                            break;
                        case "allowed_by_host_policy":
                            stage = Stage.Workload;
                            sawAllowedByHost = true;
                            break;
                    }
                }
            }

            if (stage == Stage.PreDnat && tierName is null && IsHostJump(insn))
            {
                stage = Stage.Forward;
            }

            if (!insn.TryGetProperty("comments", out JsonElement comments) || comments.ValueKind != JsonValueKind.Array)
            {
                continue;
            }

            foreach (JsonElement c in comments.EnumerateArray())
            {
                string text = (c.GetString() ?? string.Empty).Trim();
                Match m;
                if ((m = Maps.PolicyDebug.StartTier().Match(text)).Success)
                {
                    ClosePolicy();
                    tierName = m.Groups["n"].Value;
                    tierStage = stage;
                    tierPolicies = new List<PolicyBlock>();
                }
                else if ((m = Maps.PolicyDebug.EndTier().Match(text)).Success)
                {
                    ClosePolicy();
                    // From v3.30 "End of tier NAME: ACTION" (empty: deny); before, no action at all.
                    string end = m.Groups["a"].Success ? m.Groups["a"].Value : PolicyTier.EndNotWritten;
                    tiers[tierName is null ? stage : tierStage].Add(new PolicyTier(tierName ?? m.Groups["n"].Value, end, tierPolicies ?? new List<PolicyBlock>()));
                    tierName = null;
                    tierPolicies = null;
                }
                else if ((m = Maps.PolicyDebug.StartPolicy().Match(text)).Success)
                {
                    ClosePolicy();
                    policyName = m.Groups["n"].Value;
                    policyRules = new List<PolicyProgramRule>();
                }
                else if (text.StartsWith("End of rule", StringComparison.Ordinal))
                {
                    CloseRule();
                }
                else if (text.StartsWith("End of ", StringComparison.Ordinal) && !text.StartsWith("End of tier", StringComparison.Ordinal))
                {
                    ClosePolicy();
                }
                else if ((m = Maps.PolicyDebug.StartRule().Match(text)).Success)
                {
                    CloseRule();
                    ruleStage = stage;
                    string body = RuleBody(Maps.PolicyDebug.Unquote(m.Groups["r"].Value));
                    try
                    {
                        rule = RuleMatch.Parse(body);
                    }
                    catch (FormatException ex)
                    {
                        problems.Add($"a rule Felix wrote cannot be read, so its packets are Unknown: {ex.Message}");
                        rule = RuleMatch.Parse("action:\"unreadable\"");
                    }
                }
                else if ((m = Maps.PolicyDebug.MatchIdComment().Match(text)).Success && rule is not null)
                {
                    matchId = ulong.Parse(m.Groups["id"].Value, CultureInfo.InvariantCulture);
                }
                else if (text.StartsWith("IPSets ", StringComparison.Ordinal) && rule is not null)
                {
                    MapIpSets(rule, text, ids, problems);
                }
            }
        }

        ClosePolicy();
        if (tierName is not null)
        {
            problems.Add($"tier {tierName} has no end in the file");
        }

        if (!sawAllowedByHost && !sawToOrFromHost && !xdp)
        {
            // Felix labels every program it writes; a file without labels gives no stages: take its
            // tiers as the interface's own (workload tiers, or a host interface's normal host tiers).
            problems.Add("the file has no instruction labels, so the stages of its tiers are assumed: " + (forHostInterface ? "normal host policy" : "workload policy"));
            Stage to = forHostInterface ? Stage.Normal : Stage.Workload;
            List<PolicyTier> all = tiers[Stage.PreDnat].Concat(tiers[Stage.Forward]).Concat(tiers[Stage.Normal]).Concat(tiers[Stage.Workload]).ToList();
            tiers[Stage.PreDnat].Clear();
            tiers[Stage.Forward].Clear();
            tiers[Stage.Normal].Clear();
            tiers[Stage.Workload].Clear();
            tiers[to].AddRange(all);
            sawToOrFromHost = forHostInterface;
        }

        var program = new PolicyProgram
        {
            IpVersion = ipv6 ? 6 : 4,
            ForHostInterface = forHostInterface,
            ForXdp = xdp,
            SuppressNormalHostPolicy = !xdp && !sawToOrFromHost,
            HostPreDnatTiers = tiers[Stage.PreDnat],
            HostForwardTiers = tiers[Stage.Forward],
            HostNormalTiers = tiers[Stage.Normal],
            HostProfiles = profiles[Stage.Normal].Count > 0 ? new[] { new PolicyBlock("host profiles", profiles[Stage.Normal]) } : Array.Empty<PolicyBlock>(),
            Tiers = tiers[Stage.Workload],
            Profiles = profiles[Stage.Workload].Count > 0 ? new[] { new PolicyBlock("profiles", profiles[Stage.Workload]) } : Array.Empty<PolicyBlock>(),
        };
        return new DebugProgram(program, ids, problems) { Error = error };
    }

    /// <summary>From v3.32 the rule text follows the policy's namespaced name ("Start of rule ns/name action:..."): a leading word with no ':' or '{' is that name.</summary>
    internal static string RuleBody(string text)
    {
        string t = text.Trim();
        int space = t.IndexOf(' ', StringComparison.Ordinal);
        string first = space < 0 ? t : t[..space];
        return first.Length > 0 && !first.Contains(':', StringComparison.Ordinal) && !first.Contains('{', StringComparison.Ordinal)
            ? (space < 0 ? string.Empty : t[(space + 1)..].Trim())
            : t;
    }

    /// <summary>The AND of writeJumpIfToOrFromHost: ALU64 AND K (0x57) with FlagDestIsHost | FlagSrcIsHost (0x04 | 0x08).</summary>
    private static bool IsHostJump(JsonElement insn)
    {
        if (!insn.TryGetProperty("inst", out JsonElement inst) || inst.ValueKind != JsonValueKind.Array || inst.GetArrayLength() != 8)
        {
            return false;
        }

        Span<byte> b = stackalloc byte[8];
        int i = 0;
        foreach (JsonElement x in inst.EnumerateArray())
        {
            b[i++] = (byte)x.GetInt32();
        }

        return b[0] == 0x57 && BinaryPrimitives.ReadInt32LittleEndian(b[4..]) == 0x0c;
    }

    private static void MapIpSets(RuleMatch rule, string comment, Dictionary<string, ulong> ids, List<string> problems)
    {
        foreach (Match m in IpSetsComment().Matches(comment))
        {
            List<string> names = m.Groups["f"].Value switch
            {
                "src_ip_set_ids" => rule.SrcIpSetIds,
                "not_src_ip_set_ids" => rule.NotSrcIpSetIds,
                "dst_ip_set_ids" => rule.DstIpSetIds,
                _ => rule.NotDstIpSetIds,
            };
            string[] hex = m.Groups["ids"].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (hex.Length != names.Count)
            {
                problems.Add($"the IPSets comment gives {hex.Length} ids for {names.Count} {m.Groups["f"].Value} of rule {rule.Text}: their members are not known");
                continue;
            }

            for (int i = 0; i < hex.Length; i++)
            {
                ids[names[i]] = Maps.IpSetMap.ParseSetId(hex[i]);
            }
        }
    }
}
