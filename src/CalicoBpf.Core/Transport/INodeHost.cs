using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>Facts of a node's host: its clock, network interfaces, qdiscs, TC attachments, and files.</summary>
public interface INodeHost : INodeSource
{
    /// <summary>The node's monotonic clock and wall time, sampled together.</summary>
    ClockSample SampleClock();

    /// <summary>The node's network interfaces by ifindex (the namespace calico-node runs in).</summary>
    IReadOnlyDictionary<int, NetworkLink> ListLinks();

    /// <summary>The node's qdiscs with their counters (tc -s qdisc show).</summary>
    IReadOnlyList<QdiscStatistic> ListQdiscs();

    /// <summary>
    /// The programs on the node's interfaces at the TC hooks: tc filters, TCX and netkit (bpftool net
    /// show), with the kinds the node cannot see (a bpftool older than 7.3 sees no TCX or netkit).
    /// </summary>
    AttachmentListing ListAttachments();

    /// <summary>
    /// The run statistics of the node's programs <paramref name="programIds"/> over a window: the kernel's
    /// run-time statistics turned on (kernel.bpf_stats_enabled), the programs read, <paramref name="window"/>
    /// waited, read again, and the statistics set back as they were, also when the wait is cancelled
    /// (locally a BPF_ENABLE_STATS handle, which the kernel drops with the process however it ends; it
    /// turns the statistics on without changing what kernel.bpf_stats_enabled reads).
    /// </summary>
    ProgramRunWindow MeasurePrograms(IReadOnlyCollection<uint> programIds, TimeSpan window, CancellationToken cancellationToken);

    /// <summary>The names in a directory of the node, or null when it does not exist.</summary>
    IReadOnlyList<string>? ListDirectory(string path);

    /// <summary>A text file of the node, or null when it does not exist.</summary>
    string? ReadTextFile(string path);

    /// <summary>
    /// A variable of the environment calico-node runs in (remotely the calico-node container's,
    /// locally this process's), or null when it is not set.
    /// </summary>
    string? ReadEnvironment(string name);
}
