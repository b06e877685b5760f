namespace CalicoBpf;

/// <summary>
/// How one Calico counter of one interface hook moved between two samples of Get-BpfCounter
/// -SampleInterval: the rise of its 64-bit sum over CPUs, and that rise per second. Every node's
/// samples of one run carry the same Timestamp and Sample number, so a cluster can be grouped by them.
/// </summary>
public sealed class CounterSample
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
    /// <summary>The interface name, or "ifindex N" when no interface has that index any more.</summary>
    public string Interface { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    /// <summary>The hook whose program counts it: Ingress and Egress (TC) or Xdp.</summary>
    public PolicyHook Hook { get; init; }
    public CounterCategory Category { get; init; }
    /// <summary>The TYPE text calico-bpf counters dump prints ("by policy", "malformed IP packets").</summary>
    public string Name { get; init; } = string.Empty;
    /// <summary>Calico's identifier of the counter (DroppedByPolicy, ...).</summary>
    public string Id { get; init; } = string.Empty;
    /// <summary>The counter now: its 64-bit sum over CPUs.</summary>
    public ulong Value { get; init; }
    /// <summary>The rise since the sample before; after a reset, the value now.</summary>
    public ulong Delta { get; init; }
    /// <summary>Delta per second of Interval.</summary>
    public double Rate { get; init; }
    /// <summary>
    /// The counter went down (Clear-BpfCounter, a Felix restart), its interface was recreated, or it is
    /// new since the sample before: Delta is then what it counted since, never a negative rise.
    /// </summary>
    public bool Reset { get; init; }

    public override string ToString() =>
        $"{Node} {Interface} {Hook} {Name}: +{Delta.ToString(CultureInfo.InvariantCulture)} ({Rate.ToString("0.##", CultureInfo.InvariantCulture)}/s){(Reset ? " reset" : string.Empty)}";
}
