namespace CalicoBpf;

/// <summary>
/// One rule of the policy program Felix attached to an interface hook, from Felix's policy debug
/// info, with its hit count from the rule counters map (cali_rule_ctrs).
/// </summary>
public sealed class PolicyRule
{
    public string Node { get; init; } = string.Empty;
    public string Interface { get; init; } = string.Empty;
    public PolicyHook Hook { get; init; }
    public bool IPv6 { get; init; }
    public string Tier { get; init; } = string.Empty;
    /// <summary>The policy (or profile) name; empty for a tier's end-of-tier rule.</summary>
    public string Policy { get; init; } = string.Empty;
    /// <summary>The policy's kind (NetworkPolicy, GlobalNetworkPolicy, ...) where Felix names it (v3.32 and later); else empty.</summary>
    public string PolicyKind { get; init; } = string.Empty;
    /// <summary>Position of the rule in its policy (0-based).</summary>
    public int Index { get; init; }
    /// <summary>The rule as Felix printed it.</summary>
    public string Rule { get; init; } = string.Empty;
    /// <summary>allow, deny, pass, next-tier, log (as Felix names them).</summary>
    public string Action { get; init; } = string.Empty;
    /// <summary>The match conditions as the program checks them.</summary>
    public ValueList<string> Matches { get; init; } = ValueList<string>.Empty;
    /// <summary>
    /// The Match lines with IP set ids replaced by the sets' members, as HEAD's calico-bpf policy dump
    /// prints them (read from the node's IP set map); the same as Matches when no line names a set.
    /// </summary>
    public ValueList<string> ResolvedMatches { get => _resolved ?? Matches; set => _resolved = value; }

    private ValueList<string>? _resolved;
    /// <summary>The rule's id in the rule counters map; null when Felix recorded none.</summary>
    public ulong? MatchId { get; init; }
    /// <summary>Packets that hit the rule (summed over CPUs); null when the rule has no counter.</summary>
    public ulong? HitCount { get; init; }
}
