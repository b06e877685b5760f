using CalicoBpf.Interop;
using CalicoBpf.Maps;

namespace CalicoBpf.Transport;

/// <summary>
/// Where a node's dataplane bytes come from: the local kernel, or a node reached through
/// Kubernetes. Every implementation hands the same raw bytes to the same decoders.
/// </summary>
public interface INodeDataplane
{
    /// <summary>The node name stamped on every object read from it.</summary>
    string Node { get; }

    /// <summary>Where the maps are pinned, for messages.</summary>
    string PinDirectory { get; }

    /// <summary>Every Calico pin on the node.</summary>
    IReadOnlyList<CalicoMapName> ListMaps();

    /// <summary>
    /// The node's Calico release, which decides what its maps' bytes mean: given (-CalicoVersion), from
    /// the calico-node image, or inferred from the pinned map versions (<see cref="ReleaseInference"/>).
    /// </summary>
    NodeRelease Release { get; }

    /// <summary>Opens one pinned map for reading.</summary>
    IMapReader OpenMap(string pinName);

    /// <summary>
    /// Opens a map to read all its entries next (a remote node describes and dumps it in one round
    /// trip). Locally the same as <see cref="OpenMap"/>.
    /// </summary>
    IMapReader OpenMapToDump(string pinName);

    /// <summary>
    /// Says that a whole dump of the live map of this family (base name) is read next, so that a remote
    /// node can start it in the same round trip as its first probe. Nothing happens locally.
    /// </summary>
    void ExpectDump(string baseName);

    /// <summary>
    /// Says that these maps are about to be opened, so that a remote node can describe them all in
    /// one round trip instead of one each. Nothing happens locally.
    /// </summary>
    void PrepareToOpen(IReadOnlyList<string> pinNames);

    /// <summary>Opens one pinned map for changes (removing conntrack entries, resetting counters).</summary>
    IMapWriter OpenMapForWrite(string pinName);

    /// <summary>Counts the entries of several open maps at once (a remote node: in one round trip); null where a map cannot be counted.</summary>
    IReadOnlyList<long?> CountEntries(IReadOnlyList<IMapReader> maps, CancellationToken cancellationToken);

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

    /// <summary>The names in a directory of the node, or null when it does not exist.</summary>
    IReadOnlyList<string>? ListDirectory(string path);

    /// <summary>A text file of the node, or null when it does not exist.</summary>
    string? ReadTextFile(string path);

    /// <summary>
    /// The kernel trace buffer of the node, line by line: what it holds now (consuming nothing), or
    /// with <paramref name="follow"/> the trace pipe until cancelled.
    /// </summary>
    IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken);

    /// <summary>
    /// The programs attached to the connect-time load balancer's cgroup (null: the node's default,
    /// see <see cref="ConnectTime.DefaultCgroup"/>), with the link pins of <paramref name="linkDirectory"/>.
    /// </summary>
    IReadOnlyList<ConnectTimeProgram> ListConnectTimePrograms(string? cgroupPath, string linkDirectory, bool calicoOnly);

    /// <summary>What calico-bpf connect-time clean would remove: the cali_ctlb_* program arrays present and Calico's link pins.</summary>
    (IReadOnlyList<string> ProgramArrays, IReadOnlyList<string> Links) PlanConnectTimeRemoval(string linkDirectory);

    /// <summary>Empties (index 0) and unpins one of the cali_ctlb_* program arrays.</summary>
    void RemoveConnectTimeProgramArray(string path);

    /// <summary>Detaches a link pin from its cgroup (when it is a link) and removes the pin.</summary>
    void RemoveConnectTimeLink(string path);
}

/// <summary>One open map on a node.</summary>
public interface IMapReader : IDisposable
{
    BpfMapDescriptor Descriptor { get; }

    /// <summary>Streams the entries in batches; the batch object is reused.</summary>
    IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken);

    /// <summary>Counts the entries; null when the map type cannot be counted.</summary>
    long? CountEntries(CancellationToken cancellationToken);
}

/// <summary>One map opened for changes.</summary>
public interface IMapWriter : IMapReader
{
    /// <summary>Deletes a key; false when it was already gone.</summary>
    bool Delete(ReadOnlySpan<byte> key);

    /// <summary>Deletes many keys at once (a remote node does it in few round trips). Returns how many were there.</summary>
    int DeleteMany(IReadOnlyList<byte[]> keys);

    /// <summary>Overwrites an existing entry; false when the key is gone. Per-CPU values hold one copy per possible CPU.</summary>
    bool UpdateExisting(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

    /// <summary>Bytes of one entry's value as the writer takes it (per-CPU maps: every CPU's copy).</summary>
    int ValueStride { get; }
}

/// <summary>How the engine tells the caller about things worth knowing that are not errors.</summary>
public interface IEngineReporter
{
    void Warning(string message);

    void Verbose(string message);
}

/// <summary>A reporter that drops everything (tests, benchmarks).</summary>
public sealed class NullReporter : IEngineReporter
{
    public static readonly NullReporter Instance = new();

    public void Warning(string message) { }

    public void Verbose(string message) { }
}
