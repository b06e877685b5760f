using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>Decodes one entry; returns null to skip it (filtered out, or a slot with no data).</summary>
public delegate T? EntryDecoder<T>(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    where T : class;

/// <summary>What every map family's reader shares: finding the live pin, and streaming decoded entries.</summary>
public static class MapReading
{
    /// <summary>As <see cref="Find"/>, for a reader that dumps the map next (a remote node may start the dump with its probe).</summary>
    public static CalicoMapName FindToDump(INodeMaps node, string baseName, string what, string? hint = null)
    {
        node.ExpectDump(baseName);
        return Find(node, baseName, what, hint);
    }

    /// <summary>The live pin of a map family, or a not-found error that names it and says what its absence means.</summary>
    public static CalicoMapName Find(INodeMaps node, string baseName, string what, string? hint = null) =>
        MapCatalog.FindLatest(node.ListMaps(), baseName)
            ?? throw new BpfObjectNotFoundException(
                $"No {what} map ({baseName}) is pinned in {node.PinDirectory} on {node.Node}." + (hint is null ? string.Empty : " " + hint),
                Errno.ENOENT, Path.Combine(node.PinDirectory, baseName));

    /// <summary>The live pin of a map family, or null when the node has none.</summary>
    public static CalicoMapName? TryFind(INodeMaps node, string baseName) => MapCatalog.FindLatest(node.ListMaps(), baseName);

    /// <summary>Opens a pin, builds its decoder from the map's real sizes, and streams what the decoder returns.</summary>
    public static IEnumerable<T> Decode<T>(INodeMaps node, CalicoMapName pin, Func<BpfMapDescriptor, EntryDecoder<T>> decoderFor,
        IEngineReporter? reporter, CancellationToken cancellationToken)
        where T : class
    {
        using IMapReader reader = node.OpenMapToDump(pin.PinName);
        EntryDecoder<T> decode = decoderFor(reader.Descriptor);
        reporter?.Verbose($"Reading {pin.PinName} ({reader.Descriptor.Type}, {reader.Descriptor.KeySize}/{reader.Descriptor.ValueSize} bytes, max {reader.Descriptor.MaxEntries}) on {node.Node}.");
        foreach (RawEntryBatch batch in reader.ReadEntries(cancellationToken))
        {
            for (int i = 0; i < batch.Count; i++)
            {
                T? item = decode(batch.Key(i), batch.Value(i));
                if (item is not null)
                {
                    yield return item;
                }
            }
        }
    }

    /// <summary>Throws the layout error when a map's sizes are not what its family expects.</summary>
    public static void ExpectSizes(CalicoMapName pin, BpfMapDescriptor d, int keySize, int valueSize, string expected)
    {
        if (d.KeySize != keySize || d.ValueSize != valueSize)
        {
            throw new CalicoMapLayoutException(
                $"{pin.PinName} has {d.KeySize}-byte keys and {d.ValueSize}-byte values; CalicoBpf knows {expected}. Its Calico release is newer or older than this module supports; update CalicoBpf.",
                pin.PinName, d.KeySize, d.ValueSize);
        }
    }
}
