namespace CalicoBpf;

/// <summary>
/// One queueing discipline and its counters, as tc -s qdisc show reports them. On the clsact qdisc
/// Calico attaches its programs to, Drops counts the packets Calico's BPF programs dropped.
/// </summary>
public sealed class QdiscStatistic
{
    public string Node { get; init; } = string.Empty;
    public string Interface { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    /// <summary>clsact, noqueue, fq_codel, mq, ...</summary>
    public string Kind { get; init; } = string.Empty;
    public string Handle { get; init; } = string.Empty;
    /// <summary>"root", or the parent handle (ffff:fff1 for clsact and ingress).</summary>
    public string Parent { get; init; } = string.Empty;
    public ulong Bytes { get; init; }
    public ulong Packets { get; init; }
    public uint Drops { get; init; }
    public uint Overlimits { get; init; }
    public uint Requeues { get; init; }
    /// <summary>Bytes queued now.</summary>
    public uint Backlog { get; init; }
    /// <summary>Packets queued now.</summary>
    public uint QueueLength { get; init; }

    public override string ToString() => $"qdisc {Kind} {Handle} dev {Interface} parent {Parent}: sent {Bytes} bytes {Packets} pkt (dropped {Drops}, overlimits {Overlimits} requeues {Requeues})";
}
