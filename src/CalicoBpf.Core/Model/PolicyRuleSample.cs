namespace CalicoBpf;

/// <summary>
/// How the hit counter of one policy rule (cali_rule_ctrs) moved between two samples of Get-BpfPolicy
/// -SampleInterval: the rise of its 64-bit sum over CPUs, and that rise per second.
/// </summary>
public sealed class PolicyRuleSample
{
    public string Node { get; init; } = string.Empty;
    /// <summary>1 for the first sample after the baseline reading, then 2, 3, ...</summary>
    public int Sample { get; init; }
    /// <summary>When the sample was due (UTC), the same on every node of the run.</summary>
    public DateTime Timestamp { get; init; }
    /// <summary>The time between this node's two readings (in the middle of each read), which Rate divides by.</summary>
    public string Interval => IntervalValue.ToString("c", CultureInfo.InvariantCulture);
    /// <summary>Interval typed; PowerShell shows it as the hidden property IntervalValue (CalicoBpf.Types.ps1xml).</summary>
    internal TimeSpan IntervalValue { get; init; }
    public string Interface { get; init; } = string.Empty;
    public PolicyHook Hook { get; init; }
    public bool IPv6 { get; init; }
    public string Tier { get; init; } = string.Empty;
    /// <summary>The policy (or profile) name; empty for a tier's end-of-tier rule.</summary>
    public string Policy { get; init; } = string.Empty;
    public string PolicyKind { get; init; } = string.Empty;
    /// <summary>Position of the rule in its policy (0-based).</summary>
    public int Index { get; init; }
    /// <summary>The rule as Felix printed it.</summary>
    public string Rule { get; init; } = string.Empty;
    /// <summary>allow, deny, pass, next-tier, log (as Felix names them).</summary>
    public string Action { get; init; } = string.Empty;
    /// <summary>The rule's id in the rule counters map.</summary>
    public ulong MatchId { get; init; }
    /// <summary>Packets that hit the rule so far.</summary>
    public ulong Value { get; init; }
    /// <summary>The rise since the sample before; after a reset, the value now.</summary>
    public ulong Delta { get; init; }
    /// <summary>Delta per second of Interval.</summary>
    public double Rate { get; init; }
    /// <summary>The counter went down (a Felix restart reprogrammed the rule), or the rule is new since the sample before.</summary>
    public bool Reset { get; init; }

    public override string ToString() =>
        $"{Node} {Interface} {Hook} {Tier}/{Policy}[{Index}] {Action}: +{Delta.ToString(CultureInfo.InvariantCulture)}{(Reset ? " reset" : string.Empty)}";
}
