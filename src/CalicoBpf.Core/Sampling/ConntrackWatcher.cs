using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Transport;

namespace CalicoBpf.Sampling;

/// <summary>
/// One node's conntrack table read sample after sample (Watch-BpfConntrack): the flows that are new since
/// the sample before, the TCP flows that closed (their state became Closed or Reset), and the entries that
/// are gone (expired: Felix's cleaner or its timeouts removed them, the LRU table evicted them when full,
/// or someone removed them). A closed entry that Calico reuses for a new connection of the same ports is
/// New again. A reading that fails part way makes the next one a baseline, so nothing is reported twice
/// or from half a table. Only entries that pass the query's raw filter are kept, and each is kept as its
/// raw key and value bytes in flat arrays (about 60 bytes of index and the entry's own size, 104 bytes for
/// IPv4), so a full 512,000-entry table costs about 93 MB of managed heap (docs/performance.md), the same
/// from sample to sample. An entry is decoded only to be written; its TCP state (closed or not) is read
/// from its raw legs. A gone entry is written as it was last seen.
/// </summary>
public sealed class ConntrackWatcher
{
    private readonly Dictionary<RawKey, int> _index = new();
    private readonly Stack<int> _free = new();
    private byte[] _keys = Array.Empty<byte>();
    private byte[] _values = Array.Empty<byte>();
    private int[] _seen = Array.Empty<int>();
    private bool[] _closed = Array.Empty<bool>();
    private int _slots;
    private int _keySize;
    private int _valueSize;
    private int _generation;
    private bool _complete = true;

    /// <summary>How many entries the watcher holds (those the filter let through at the last sample).</summary>
    public int Count => _index.Count;

    /// <summary>
    /// Reads the table once and yields what changed since the reading before; nothing for the first (the
    /// baseline). The decoded entries go through the query's decoded checks (state, workloads), which also
    /// name pods and services with -Resolve.
    /// </summary>
    public IEnumerable<ConntrackChange> Sample(INodeDataplane node, ConntrackQuery query, SampleTick tick, IEngineReporter? reporter, CancellationToken cancellationToken)
    {
        using ConntrackScan scan = ConntrackReader.Open(node, query, reporter);
        ConntrackLayout layout = scan.Layout;
        if (_keySize != layout.KeySize || _valueSize != layout.ValueSize || !_complete)
        {
            // A new map version (Felix upgraded), or the reading before failed part way: what was kept
            // cannot be compared, so this reading is a baseline.
            Reset(layout.KeySize, layout.ValueSize);
        }

        bool baseline = _generation == 0;
        int generation = ++_generation;
        _complete = false;
        var changes = new List<ConntrackChange>();
        foreach (RawEntryBatch batch in scan.Batches(cancellationToken))
        {
            changes.Clear();
            Observe(batch, scan, query, tick, baseline, generation, changes);
            foreach (ConntrackChange c in changes)
            {
                yield return c;
            }
        }

        // What was kept and not seen now is gone: written as it was last seen, then forgotten.
        var gone = new List<int>();
        foreach ((RawKey _, int slot) in _index)
        {
            if (_seen[slot] != generation)
            {
                gone.Add(slot);
            }
        }

        var expired = new List<ConntrackChange>();
        foreach (int slot in gone)
        {
            if (Forget(slot, scan.Codec) is { } last && !baseline && query.MatchesDecoded(last))
            {
                expired.Add(Change(ConntrackChangeKind.Expired, last, tick));
            }
        }

        _complete = true;
        foreach (ConntrackChange c in expired)
        {
            yield return c;
        }
    }

    /// <summary>One batch of the read: each entry the filter lets through is kept, compared, and what changed added to <paramref name="changes"/>.</summary>
    private void Observe(RawEntryBatch batch, ConntrackScan scan, ConntrackQuery query, SampleTick tick, bool baseline, int generation, List<ConntrackChange> changes)
    {
        ConntrackLayout layout = scan.Layout;
        for (int i = 0; i < batch.Count; i++)
        {
            ReadOnlySpan<byte> key = batch.Key(i);
            ReadOnlySpan<byte> value = batch.Value(i);
            if (!query.MatchesRaw(layout, key, value, scan.Clock))
            {
                continue;
            }

            var k = new RawKey(key);
            if (!_index.TryGetValue(k, out int slot))
            {
                slot = Add(k, key, value, generation);
                _closed[slot] = IsClosed(layout.StateOf(key, value));
                if (baseline)
                {
                    continue;
                }

                ConntrackEntry opened = scan.Codec.Decode(key, value);
                if (query.MatchesDecoded(opened))
                {
                    changes.Add(Change(ConntrackChangeKind.New, opened, tick));
                }

                continue;
            }

            _seen[slot] = generation;
            Span<byte> kept = _values.AsSpan(slot * _valueSize, _valueSize);
            if (value.SequenceEqual(kept))
            {
                continue;
            }

            value.CopyTo(kept);
            bool closed = IsClosed(layout.StateOf(key, value));
            if (closed == _closed[slot])
            {
                continue;
            }

            // Closed now; or a closed entry that Calico reused for a new connection of the same ports (its legs start again): New.
            _closed[slot] = closed;
            ConntrackEntry now = scan.Codec.Decode(key, value);
            if (query.MatchesDecoded(now))
            {
                changes.Add(Change(closed ? ConntrackChangeKind.Closed : ConntrackChangeKind.New, now, tick));
            }
        }
    }

    /// <summary>Drops a kept entry, returning it as it was last seen.</summary>
    private ConntrackEntry Forget(int slot, ConntrackCodec codec)
    {
        ReadOnlySpan<byte> key = _keys.AsSpan(slot * _keySize, _keySize);
        ConntrackEntry last = codec.Decode(key, _values.AsSpan(slot * _valueSize, _valueSize));
        _index.Remove(new RawKey(key));
        _free.Push(slot);
        return last;
    }

    private static ConntrackChange Change(ConntrackChangeKind kind, ConntrackEntry entry, SampleTick tick) =>
        new() { Node = entry.Node, Sample = tick.Number, Timestamp = tick.Timestamp, Change = kind, Entry = entry };

    /// <summary>
    /// A TCP entry whose state is Closed or Reset, decided on its raw bytes (<see cref="ConntrackLayout.StateOf"/>,
    /// the decoded entry's rule; None for every other protocol): the baseline decodes no entry.
    /// </summary>
    private static bool IsClosed(TcpState state) => state is TcpState.Closed or TcpState.Reset;

    private int Add(RawKey k, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, int generation)
    {
        if (!_free.TryPop(out int slot))
        {
            slot = _slots++;
            if (slot * _keySize >= _keys.Length)
            {
                int capacity = Math.Max(1024, _seen.Length * 2);
                Array.Resize(ref _keys, capacity * _keySize);
                Array.Resize(ref _values, capacity * _valueSize);
                Array.Resize(ref _seen, capacity);
                Array.Resize(ref _closed, capacity);
            }
        }

        key.CopyTo(_keys.AsSpan(slot * _keySize, _keySize));
        value.CopyTo(_values.AsSpan(slot * _valueSize, _valueSize));
        _seen[slot] = generation;
        _closed[slot] = false;
        _index[k] = slot;
        return slot;
    }

    private void Reset(int keySize, int valueSize)
    {
        _index.Clear();
        _free.Clear();
        (_keys, _values, _seen, _closed, _slots, _generation) = (Array.Empty<byte>(), Array.Empty<byte>(), Array.Empty<int>(), Array.Empty<bool>(), 0, 0);
        (_keySize, _valueSize) = (keySize, valueSize);
    }

    /// <summary>A conntrack key's bytes (16 for IPv4, 40 for IPv6) as five words: an index key with no object per entry.</summary>
    private readonly struct RawKey : IEquatable<RawKey>
    {
        private readonly ulong _a, _b, _c, _d, _e;

        public RawKey(ReadOnlySpan<byte> key)
        {
            Span<byte> words = stackalloc byte[40];
            words.Clear();
            key[..Math.Min(key.Length, 40)].CopyTo(words);
            _a = BinaryPrimitives.ReadUInt64LittleEndian(words);
            _b = BinaryPrimitives.ReadUInt64LittleEndian(words[8..]);
            _c = BinaryPrimitives.ReadUInt64LittleEndian(words[16..]);
            _d = BinaryPrimitives.ReadUInt64LittleEndian(words[24..]);
            _e = BinaryPrimitives.ReadUInt64LittleEndian(words[32..]);
        }

        public bool Equals(RawKey other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d && _e == other._e;

        public override bool Equals(object? obj) => obj is RawKey k && Equals(k);

        public override int GetHashCode() => HashCode.Combine(_a, _b, _c, _d, _e);
    }
}
