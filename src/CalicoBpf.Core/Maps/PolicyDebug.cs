using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>
/// Felix's policy debug info (BPFPolicyDebugEnabled, on by default): one JSON file per interface,
/// hook and family in /var/run/calico/bpf/policy, holding the policy program's instructions with
/// the comments Felix wrote while building it. The comments give tiers, policies, rules and their
/// match ids; the rule counters map (cali_rule_ctrs) gives each rule's hits.
/// </summary>
public static partial class PolicyDebug
{
    public const string DefaultDirectory = "/var/run/calico/bpf/policy";
    public const string RuleCounters = "cali_rule_ctrs";

    [GeneratedRegex(@"^Start of tier ""?(?<n>.*?)""?$")]
    internal static partial Regex StartTier();

    /// <summary>"End of tier NAME", from v3.30 with the end-of-tier action: "End of tier NAME: pass" (empty: deny).</summary>
    [GeneratedRegex(@"^End of tier ""?(?<n>[^"":]*?)""?(?::\s*(?<a>[\w-]*))?$")]
    internal static partial Regex EndTier();

    /// <summary>
    /// "Start of policy NAME" (profiles likewise) up to v3.31; from v3.32 "Start of KIND NAME ID"
    /// (felix/bpf/polprog: NetworkPolicy, GlobalNetworkPolicy, Staged..., Profile).
    /// </summary>
    [GeneratedRegex(@"^Start of (?:(?:policy|profile) ""?(?<n>.*?)""?|(?<kind>[A-Z]\w*) (?<n>\S+) (?<id>-?\d+))$")]
    internal static partial Regex StartPolicy();

    [GeneratedRegex(@"^End of (?:policy|profile|[A-Z]\w*)\b")]
    private static partial Regex EndPolicy();

    /// <summary>"End of rule ID" (from v3.32 "End of rule NAME ID"): the rule's comments end there.</summary>
    [GeneratedRegex(@"^End of rule\b")]
    private static partial Regex EndRule();

    [GeneratedRegex(@"^Start of rule (?<r>.*)$")]
    internal static partial Regex StartRule();

    [GeneratedRegex(@"Rule MatchID: (?<id>\d+)")]
    internal static partial Regex MatchIdComment();

    [GeneratedRegex(@"action:\\?""(?<a>[\w-]+)\\?""")]
    private static partial Regex RuleAction();

    public static string FileName(string iface, PolicyHook hook, bool ipv6) =>
        $"{iface}_{hook.ToString().ToLowerInvariant()}_v{(ipv6 ? 6 : 4)}.json";

    /// <summary>Rules of one interface's hooks. Throws when Felix wrote nothing for the interface.</summary>
    public static IEnumerable<PolicyRule> Read(INodeDataplane node, string directory, string iface, IReadOnlyCollection<PolicyHook> hooks, bool ipv6,
        IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<string>? names = node.ListDirectory(directory);
        if (names is null)
        {
            throw new BpfEnvironmentException(
                $"There is no policy debug info on {node.Node}: {directory} does not exist. Felix writes it when BPFPolicyDebugEnabled is true (the default); check the FelixConfiguration.",
                BpfEnvironmentProblem.NoPolicyDebugInfo, directory);
        }

        var files = hooks.Select(h => (Hook: h, Name: FileName(iface, h, ipv6))).Where(f => names.Contains(f.Name)).ToList();
        if (files.Count == 0)
        {
            throw new BpfEnvironmentException(
                $"Felix wrote no {(ipv6 ? "IPv6" : "IPv4")} policy debug info for {iface} ({string.Join(", ", hooks)}) in {directory}: the interface has no Calico policy program there, or its name is wrong (Get-BpfInterface lists them).",
                BpfEnvironmentProblem.NoPolicyDebugInfo, Path.Combine(directory, FileName(iface, hooks.First(), ipv6)));
        }

        Dictionary<ulong, ulong> hits = ReadHitCounts(node, reporter, cancellationToken);
        var sets = new Lazy<IReadOnlyDictionary<ulong, string[]>>(() => ReadIpSetMembers(node, ipv6, reporter, cancellationToken));
        foreach ((PolicyHook hook, string name) in files)
        {
            string json = node.ReadTextFile(directory + "/" + name) ?? "{}";
            foreach (PolicyRule rule in Parse(json, node.Node, iface, hook, ipv6, hits, reporter))
            {
                yield return WithSetMembers(rule, sets);
            }
        }
    }

    /// <summary>The rule with its IP set ids resolved (ResolvedMatches); the sets are read on first need, once per read.</summary>
    private static PolicyRule WithSetMembers(PolicyRule rule, Lazy<IReadOnlyDictionary<ulong, string[]>> sets)
    {
        if (rule.Matches.Any(m => IpSetId().IsMatch(m)))
        {
            rule.ResolvedMatches = new ValueList<string>(rule.Matches.Select(m => ResolveIpSets(m, sets.Value)), "; ");
        }

        return rule;
    }

    [GeneratedRegex("0x[0-9a-fA-F]+")]
    private static partial Regex IpSetId();

    /// <summary>
    /// A Match line with each IP set id (0x...) replaced by the set's members, sorted and joined with
    /// ',', as HEAD's calico-bpf policy dump prints it (felix/cmd/calico-bpf/commands/policy_debug.go
    /// resolveMatchIPSets); ids of sets that are not programmed stay as they are.
    /// </summary>
    public static string ResolveIpSets(string match, IReadOnlyDictionary<ulong, string[]> members) =>
        IpSetId().Replace(match, m => ulong.TryParse(m.Value.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong id)
            && members.TryGetValue(id, out string[]? list) && list.Length > 0
                ? string.Join(',', list)
                : m.Value);

    /// <summary>Every IP set's members as calico-bpf prints them, sorted as strings; empty when the map is absent.</summary>
    private static IReadOnlyDictionary<ulong, string[]> ReadIpSetMembers(INodeDataplane node, bool ipv6, IEngineReporter? reporter, CancellationToken cancellationToken)
    {
        if (MapReading.TryFind(node, ipv6 ? IpSetMap.V6 : IpSetMap.V4) is null)
        {
            reporter?.Verbose($"No IP set map on {node.Node}: IP set ids in Match lines stay as they are.");
            return new Dictionary<ulong, string[]>();
        }

        return IpSetMap.Read(node, ipv6, cancellationToken: cancellationToken)
            .GroupBy(m => m.SetId)
            .ToDictionary(g => g.Key, g => g.Select(m => m.Member).Order(StringComparer.Ordinal).ToArray());
    }

    /// <summary>The interfaces Felix wrote policy debug files for (the iface of iface_hook_vN.json), sorted.</summary>
    public static IReadOnlyList<string> ListInterfaces(INodeDataplane node, string directory) => Interfaces(node.ListDirectory(directory) ?? Array.Empty<string>());

    /// <summary>
    /// The rules of every interface Felix wrote files for (that <paramref name="interfaceFilter"/> takes), IPv4
    /// and with <paramref name="includeIPv6"/> IPv6 too, with one listing, one read of the rule counters and at
    /// most one of each family's IP sets for all of them: what a sampler or an export reads each time
    /// (<see cref="Read"/> reads them per interface). A file that went away since the listing (a pod deleted)
    /// gives no rules. Null when the directory does not exist.
    /// </summary>
    public static List<PolicyRule>? ReadAll(INodeDataplane node, string directory, Func<string, bool>? interfaceFilter, bool includeIPv6 = false,
        IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        if (node.ListDirectory(directory) is not { } names)
        {
            return null;
        }

        var rules = new List<PolicyRule>();
        Dictionary<ulong, ulong>? hits = null;
        foreach (bool ipv6 in includeIPv6 ? new[] { false, true } : new[] { false })
        {
            var sets = new Lazy<IReadOnlyDictionary<ulong, string[]>>(() => ReadIpSetMembers(node, ipv6, reporter, cancellationToken));
            foreach (string iface in Interfaces(names).Where(i => interfaceFilter is null || interfaceFilter(i)))
            {
                foreach (PolicyHook hook in new[] { PolicyHook.Ingress, PolicyHook.Egress, PolicyHook.Xdp })
                {
                    string name = FileName(iface, hook, ipv6);
                    if (names.Contains(name) && node.ReadTextFile(directory + "/" + name) is { } json)
                    {
                        hits ??= ReadHitCounts(node, reporter, cancellationToken);
                        rules.AddRange(Parse(json, node.Node, iface, hook, ipv6, hits, reporter).Select(r => WithSetMembers(r, sets)));
                    }
                }
            }
        }

        return rules;
    }

    private static IReadOnlyList<string> Interfaces(IEnumerable<string> names) =>
        names
            .Select(n => DebugFileName().Match(n))
            .Where(m => m.Success)
            .Select(m => m.Groups["i"].Value)
            .Distinct()
            .OrderBy(n => n, StringComparer.Ordinal)
            .ToList();

    [GeneratedRegex(@"^(?<i>.+)_(ingress|egress|xdp)_v[46]\.json$")]
    private static partial Regex DebugFileName();

    /// <summary>Sum over CPUs of every rule counter, by match id; empty when the map is absent.</summary>
    public static Dictionary<ulong, ulong> ReadHitCounts(INodeDataplane node, IEngineReporter? reporter, CancellationToken cancellationToken)
    {
        var hits = new Dictionary<ulong, ulong>();
        CalicoMapName? pin = MapReading.TryFind(node, RuleCounters);
        if (pin is null)
        {
            reporter?.Verbose($"No rule counters map ({RuleCounters}) on {node.Node}: hit counts stay empty.");
            return hits;
        }

        using IMapReader reader = node.OpenMapToDump(pin.PinName);
        MapReading.ExpectSizes(pin, reader.Descriptor, 8, 8, "8-byte keys and 8-byte per-CPU values");
        foreach (RawEntryBatch b in reader.ReadEntries(cancellationToken))
        {
            for (int i = 0; i < b.Count; i++)
            {
                ReadOnlySpan<byte> v = b.Value(i);
                ulong sum = 0;
                int cpus = b.PerCpu ? b.Cpus : 1;
                for (int c = 0; c < cpus; c++)
                {
                    sum += BinaryPrimitives.ReadUInt64LittleEndian(v[(c * b.PerCpuSlot)..]);
                }

                hits[BinaryPrimitives.ReadUInt64LittleEndian(b.Key(i))] = sum;
            }
        }

        return hits;
    }

    /// <summary>Turns one debug file's instruction comments into rules.</summary>
    public static IEnumerable<PolicyRule> Parse(string json, string node, string iface, PolicyHook hook, bool ipv6,
        IReadOnlyDictionary<ulong, ulong> hits, IEngineReporter? reporter = null)
    {
        using JsonDocument doc = JsonDocument.Parse(json.TrimStart('\uFEFF'));
        JsonElement root = doc.RootElement;
        if (root.TryGetProperty("error", out JsonElement err) && err.ValueKind == JsonValueKind.String && err.GetString() is { Length: > 0 } e)
        {
            reporter?.Warning($"Felix recorded an error for the {hook} policy of {iface}: {e}");
        }

        var rules = new List<PolicyRule>();
        string tier = string.Empty, policy = string.Empty, kind = string.Empty;
        int index = 0;
        RuleBuilder? current = null;

        void Close()
        {
            if (current is not null)
            {
                rules.Add(current.Build(node, iface, hook, ipv6, tier, policy, kind, hits));
                current = null;
            }
        }

        if (!root.TryGetProperty("policyInfo", out JsonElement info) || info.ValueKind != JsonValueKind.Array)
        {
            return rules;
        }

        foreach (JsonElement insn in info.EnumerateArray())
        {
            if (!insn.TryGetProperty("comments", out JsonElement comments) || comments.ValueKind != JsonValueKind.Array)
            {
                continue;
            }

            foreach (JsonElement c in comments.EnumerateArray())
            {
                string text = (c.GetString() ?? string.Empty).Trim();
                Match m;
                if ((m = StartTier().Match(text)).Success)
                {
                    Close();
                    tier = m.Groups["n"].Value;
                    policy = kind = string.Empty;
                    index = 0;
                }
                else if ((m = EndTier().Match(text)).Success)
                {
                    Close();
                    policy = kind = string.Empty;
                    current = new RuleBuilder(index++, "end of tier " + m.Groups["n"].Value, isEndOfTier: true)
                    {
                        EndOfTierAction = m.Groups["a"].Value is { Length: > 0 } a ? a : "deny",
                    };
                }
                else if ((m = StartPolicy().Match(text)).Success)
                {
                    Close();
                    policy = m.Groups["n"].Value;
                    kind = m.Groups["kind"].Success ? m.Groups["kind"].Value : string.Empty;
                    index = 0;
                }
                else if (EndRule().IsMatch(text))
                {
                    Close();
                }
                else if (EndPolicy().IsMatch(text))
                {
                    Close();
                }
                else if ((m = StartRule().Match(text)).Success)
                {
                    Close();
                    current = new RuleBuilder(index++, Unquote(m.Groups["r"].Value), isEndOfTier: false);
                }
                else if ((m = MatchIdComment().Match(text)).Success && current is not null)
                {
                    current.MatchId = ulong.Parse(m.Groups["id"].Value, CultureInfo.InvariantCulture);
                }
                else if (current is not null && text.Length > 0)
                {
                    current.Matches.Add(text);
                }
            }
        }

        Close();
        return rules;
    }

    /// <summary>Undoes Go's %q quoting of a rule: the outer quotes, escaped quotes and backslashes.</summary>
    internal static string Unquote(string text)
    {
        string t = text.Trim();
        if (t.Length >= 2 && t[0] == '"' && t[^1] == '"')
        {
            t = t[1..^1].Replace("\\\"", "\"", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal);
        }

        return t;
    }

    private sealed class RuleBuilder
    {
        private readonly int _index;
        private readonly string _rule;
        private readonly bool _endOfTier;

        public RuleBuilder(int index, string rule, bool isEndOfTier)
        {
            _index = index;
            _rule = rule;
            _endOfTier = isEndOfTier;
        }

        public ulong? MatchId { get; set; }

        public List<string> Matches { get; } = new();

        /// <summary>What an end-of-tier rule does to a packet no policy decided: deny, or pass (to the next tier) from v3.30.</summary>
        public string EndOfTierAction { get; init; } = "deny";

        public PolicyRule Build(string node, string iface, PolicyHook hook, bool ipv6, string tier, string policy, string kind, IReadOnlyDictionary<ulong, ulong> hits)
        {
            Match a = RuleAction().Match(_rule);
            return new PolicyRule
            {
                Node = node,
                Interface = iface,
                Hook = hook,
                IPv6 = ipv6,
                Tier = tier,
                Policy = _endOfTier ? string.Empty : policy,
                PolicyKind = _endOfTier ? string.Empty : kind,
                Index = _index,
                Rule = _rule,
                Action = a.Success ? a.Groups["a"].Value : _endOfTier ? EndOfTierAction : string.Empty,
                Matches = new ValueList<string>(Matches, "; "),
                MatchId = MatchId,
                HitCount = MatchId is { } id ? (hits.TryGetValue(id, out ulong h) ? h : 0) : null,
            };
        }
    }
}
