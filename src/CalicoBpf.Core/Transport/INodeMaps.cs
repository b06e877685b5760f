using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>A node's pinned Calico maps: which are there, what release wrote them, and their entries.</summary>
public interface INodeMaps : INodeSource
{
    /// <summary>Where the maps are pinned, for messages.</summary>
    string PinDirectory { get; }

    /// <summary>
    /// Every name in the pin directory, Calico's or not (which are Calico's maps, and what they are, is
    /// <c>MapCatalog.ListMaps</c>'s to say). Throws <see cref="BpfEnvironmentException"/> when the
    /// directory cannot be read there (not root, no bpffs, no such directory).
    /// </summary>
    IReadOnlyList<string> ListPins();

    /// <summary>
    /// The node's Calico release when something other than its maps tells it: -CalicoVersion, or the
    /// calico-node image. Null: <c>ReleaseInference.Of</c> infers it from the pinned map versions.
    /// </summary>
    NodeRelease? GivenRelease { get; }

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
