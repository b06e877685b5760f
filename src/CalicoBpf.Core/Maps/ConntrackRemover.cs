using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>
/// Deletes conntrack entries from one map, always with their NAT partner: a NatForward entry takes its
/// NatReverse entry with it and a NatReverse entry its NatForward entries, as the dataplane would
/// otherwise keep a half that points nowhere. The index of NatForward entries is built on first need.
/// </summary>
public sealed class ConntrackRemover : IDisposable
{
    private readonly IMapWriter _map;
    private readonly ConntrackLayout _layout;
    private readonly CancellationToken _cancellationToken;
    private Dictionary<byte[], List<byte[]>>? _forwardByReverse;
    private readonly HashSet<byte[]> _deleted = new(ByteArrayComparer.Instance);

    public ConntrackRemover(INodeMaps node, CalicoMapName pin, CancellationToken cancellationToken = default)
    {
        Node = node.Node;
        MapName = pin.PinName;
        _map = node.OpenMapForWrite(pin.PinName);
        _layout = ConntrackLayout.For(pin.PinName, pin.Version, _map.Descriptor.KeySize, _map.Descriptor.ValueSize);
        _cancellationToken = cancellationToken;
    }

    public string Node { get; }

    public string MapName { get; }

    public int Removed { get; private set; }

    public int AlreadyGone { get; private set; }

    /// <summary>The keys a removal of this entry deletes: its own, and its NAT partners'.</summary>
    public IReadOnlyList<byte[]> KeysFor(ConntrackEntry entry)
    {
        var keys = new List<byte[]> { entry.RawKey.Bytes };
        if (entry.Type == ConntrackType.NatForward && entry.ReverseKey is { } rk)
        {
            byte[] reverse = new byte[_layout.KeySize];
            ConntrackCodec.WriteKey(_layout, reverse, rk.Protocol, rk.AddressAValue, rk.PortA, rk.AddressBValue, rk.PortB);
            keys.Add(reverse);
        }
        else if (entry.Type == ConntrackType.NatReverse && ForwardIndex().TryGetValue(entry.RawKey.Bytes, out List<byte[]>? forwards))
        {
            keys.AddRange(forwards);
        }

        return keys;
    }

    /// <summary>Deletes the entry and its NAT partners. Returns how many were deleted.</summary>
    public int Remove(ConntrackEntry entry)
    {
        if (entry.RawKey.Count != _layout.KeySize)
        {
            throw new ArgumentException($"The entry's key has {entry.RawKey.Count} bytes; {MapName} takes {_layout.KeySize}. Was it read from another map?", nameof(entry));
        }

        int n = 0;
        foreach (byte[] key in KeysFor(entry))
        {
            if (_map.Delete(key))
            {
                n++;
                _deleted.Add(key);
            }
            else if (ReferenceEquals(key, entry.RawKey) && !_deleted.Contains(key))
            {
                // Gone before this removal asked for it (expired, or removed by someone else);
                // a key this removal deleted as an earlier entry's NAT partner does not count.
                AlreadyGone++;
            }
        }

        Removed += n;
        return n;
    }

    /// <summary>
    /// Deletes many entries with their NAT partners in few round trips (a remote node). Returns how
    /// many were deleted; entries already gone count in <see cref="AlreadyGone"/>.
    /// </summary>
    public int RemoveMany(IEnumerable<ConntrackEntry> entries)
    {
        var keys = new List<byte[]>();
        var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
        foreach (ConntrackEntry e in entries)
        {
            foreach (byte[] k in KeysFor(e))
            {
                if (seen.Add(k))
                {
                    keys.Add(k);
                }
            }
        }

        int n = _map.DeleteMany(keys);
        Removed += n;
        AlreadyGone += keys.Count - n;
        return n;
    }

    /// <summary>Deletes every entry (calico-bpf conntrack clean). Returns how many were deleted.</summary>
    public int RemoveAll()
    {
        var keys = new List<byte[]>();
        foreach (RawEntryBatch b in _map.ReadEntries(_cancellationToken))
        {
            for (int i = 0; i < b.Count; i++)
            {
                keys.Add(b.Key(i).ToArray());
            }
        }

        int n = 0;
        foreach (byte[][] chunk in keys.Chunk(4096))
        {
            _cancellationToken.ThrowIfCancellationRequested();
            n += _map.DeleteMany(chunk);
        }

        Removed += n;
        return n;
    }

    public ConntrackRemoval Result => new() { Node = Node, MapName = MapName, Removed = Removed, AlreadyGone = AlreadyGone };

    private Dictionary<byte[], List<byte[]>> ForwardIndex()
    {
        if (_forwardByReverse is not null)
        {
            return _forwardByReverse;
        }

        var index = new Dictionary<byte[], List<byte[]>>(ByteArrayComparer.Instance);
        foreach (RawEntryBatch b in _map.ReadEntries(_cancellationToken))
        {
            for (int i = 0; i < b.Count; i++)
            {
                ReadOnlySpan<byte> v = b.Value(i);
                if ((ConntrackType)v[16] != ConntrackType.NatForward)
                {
                    continue;
                }

                byte[] reverse = v.Slice(_layout.ReverseKeyOffset, _layout.KeySize).ToArray();
                if (!index.TryGetValue(reverse, out List<byte[]>? list))
                {
                    index[reverse] = list = new List<byte[]>(1);
                }

                list.Add(b.Key(i).ToArray());
            }
        }

        return _forwardByReverse = index;
    }

    public void Dispose() => _map.Dispose();
}
