namespace CalicoBpf;

/// <summary>
/// The packets one interface hook dropped for one reason in a window of Get-BpfDrop, explained: the
/// reason as Calico names it, how many, the deny rule whose hit counter rose in the same window, the
/// program's own account of the dropped packets when debug logging is on, and with -Resolve the pod
/// behind the interface and the pods and services the packets were between.
/// </summary>
public sealed class PacketDrop
{
    public string Node { get; init; } = string.Empty;
    /// <summary>When the window began (UTC, the sample before).</summary>
    public DateTime Start { get; init; }
    /// <summary>When the window ended (UTC, the sample that saw the drops; the same on every node of a run).</summary>
    public DateTime End { get; init; }
    /// <summary>The interface name, or "ifindex N" when no interface has that index any more.</summary>
    public string Interface { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    /// <summary>The hook whose program dropped them: Ingress and Egress (TC) or Xdp.</summary>
    public PolicyHook Hook { get; init; }
    /// <summary>Why, in Calico's words (felix/bpf-gpl/reasons.h as calico-bpf prints it): "dropped by policy", "unknown route".</summary>
    public string Reason { get; init; } = string.Empty;
    /// <summary>The counter that rose (DroppedByPolicy, DroppedUnknownRoute, ...).</summary>
    public string Id { get; init; } = string.Empty;
    /// <summary>How many packets: the rise of the counter in the window (after a reset, its value).</summary>
    public ulong Count { get; init; }
    /// <summary>Count per second of the window.</summary>
    public double Rate { get; init; }
    /// <summary>The counter was reset in the window (Clear-BpfCounter, a Felix restart): Count is what it counted since.</summary>
    public bool Reset { get; init; }
    /// <summary>The tier of the deny rule that dropped them; empty when no deny rule's counter rose (or the reason is not policy).</summary>
    public string Tier { get; init; } = string.Empty;
    /// <summary>The policy of that rule; empty for a tier's end-of-tier deny, or when no rule is known.</summary>
    public string Policy { get; init; } = string.Empty;
    public string PolicyKind { get; init; } = string.Empty;
    /// <summary>The rule's position in its policy; null when no rule is known.</summary>
    public int? RuleIndex { get; init; }
    /// <summary>The rule as Felix printed it.</summary>
    public string Rule { get; init; } = string.Empty;
    /// <summary>The rise of that rule's hit counter in the window; null when no rule is known.</summary>
    public ulong? RuleHits { get; init; }
    /// <summary>
    /// Every deny rule of the interface hook's program whose hit counter rose in the window, "tier/policy[index] +hits",
    /// most hits first; the rule above is the first. More than one means the counters alone cannot tell which dropped what.
    /// </summary>
    public ValueList<string> Rules { get; init; } = ValueList<string>.Empty;
    /// <summary>With debug logging on (bpfLogLevel Debug): the trace lines of dropped packets in the window, each packet's from its first line to its final DENY (a few packets at most).</summary>
    public ValueList<string> TraceLines { get; init; } = ValueList<string>.Empty;
    /// <summary>With -Resolve: the pod behind the interface (namespace/name), from the node's workload routes; empty for a host interface.</summary>
    public string Workload { get; init; } = string.Empty;
    /// <summary>With -Resolve and trace lines: the pods and services the dropped packets were between (namespace/name), or their addresses.</summary>
    public ValueList<string> Peers { get; init; } = ValueList<string>.Empty;

    public override string ToString() =>
        $"{Node} {Interface} {Hook}: {Count.ToString(CultureInfo.InvariantCulture)} {Reason}{(Policy.Length > 0 || Tier.Length > 0 ? $" ({Tier}/{Policy}[{RuleIndex}])" : string.Empty)}";
}
