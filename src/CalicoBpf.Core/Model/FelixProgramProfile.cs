namespace CalicoBpf;

/// <summary>
/// Felix's own profiling of one interface's programs (FelixConfiguration bpfProfiling: Enabled), from
/// cali_profiling (felix/bpf-gpl/profiling.h): the time its programs spent and how many packets, by
/// direction and whether conntrack had seen the flow. Read without deleting, where calico-bpf profiling
/// e2e deletes what it reads: the figures are since Felix attached (or since someone last ran calico-bpf).
/// </summary>
public sealed class FelixProgramProfile
{
    public string Node { get; init; } = string.Empty;
    public string Interface { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    /// <summary>
    /// INGRESS or EGRESS as calico-bpf labels them: INGRESS is a program from a host endpoint or to a
    /// workload (profiling.h's kind 0 and 1), EGRESS the others.
    /// </summary>
    public string Direction { get; init; } = string.Empty;
    /// <summary>new (conntrack had no entry: the packet went through policy) or est (an established flow), as calico-bpf labels them.</summary>
    public string Conntrack { get; init; } = string.Empty;
    /// <summary>Packets profiled (summed over CPUs).</summary>
    public ulong Samples { get; init; }
    /// <summary>Their total run time in nanoseconds (summed over CPUs).</summary>
    public ulong TotalNanoseconds { get; init; }
    /// <summary>Time per packet in nanoseconds, as calico-bpf prints it; null without samples.</summary>
    public double? AverageNanoseconds { get; init; }

    public override string ToString() => $"{Node} {Interface} {Direction} {Conntrack}: {Samples.ToString(CultureInfo.InvariantCulture)} samples";
}
