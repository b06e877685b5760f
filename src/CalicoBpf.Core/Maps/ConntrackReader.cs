using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>How full a conntrack table was when it was read: its entries and max_entries.</summary>
public sealed class ConntrackTally
{
    public string Map { get; set; } = string.Empty;
    public long Entries { get; set; }
    public uint MaxEntries { get; set; }

    /// <summary>Entries as a percentage of max_entries.</summary>
    public double Percent => MaxEntries == 0 ? 0 : 100.0 * Entries / MaxEntries;
}

/// <summary>What Get-BpfConntrack asks for. Empty sets mean "any". Checked on raw bytes before decoding where possible.</summary>
public sealed record ConntrackQuery
{
    public bool IPv6 { get; init; }
    public IReadOnlyCollection<IpProtocol>? Protocols { get; init; }
    private readonly IReadOnlyList<AddressPrefix>? _addresses;
    private readonly AddressSet? _addressSet;
    private readonly IReadOnlyList<AddressPrefix>? _workloadAddresses;
    private readonly AddressSet? _workloadAddressSet;

    /// <summary>Matches the source, destination or service address.</summary>
    public IReadOnlyList<AddressPrefix>? Addresses
    {
        get => _addresses;
        init
        {
            _addresses = value;
            _addressSet = value is { Count: > 0 } ? new AddressSet(value) : null;
        }
    }
    /// <summary>Matches the source, destination or service port.</summary>
    public IReadOnlyCollection<int>? Ports { get; init; }
    public IReadOnlyCollection<ConntrackType>? Types { get; init; }
    public IReadOnlyCollection<TcpState>? States { get; init; }
    /// <summary>Only entries whose last packet is older than this.</summary>
    public TimeSpan? OlderThan { get; init; }

    /// <summary>-Resolve: pods and services to name each entry's ends and service with.</summary>
    public IWorkloadNamer? Resolver { get; init; }

    /// <summary>-Pod, -Namespace, -Service: checked on resolved entries (needs <see cref="Resolver"/>).</summary>
    public IWorkloadMatcher? Workloads { get; init; }

    /// <summary>The addresses of <see cref="Workloads"/>: an entry must touch one of them as well as one of <see cref="Addresses"/>.</summary>
    public IReadOnlyList<AddressPrefix>? WorkloadAddresses
    {
        get => _workloadAddresses;
        init
        {
            _workloadAddresses = value;
            _workloadAddressSet = value is null ? null : new AddressSet(value);
        }
    }

    /// <summary>
    /// IPv4 only: keep the entries whose key holds one of these addresses on either side (as u32 read
    /// big-endian from the key's bytes). A set, not prefixes: Test-BpfFlow asks for a thousand flows'
    /// clients at once, and a set answers each entry in one lookup.
    /// </summary>
    public IReadOnlySet<uint>? KeyAddressesV4 { get; init; }

    /// <summary>When set, counts every entry read (matched or not) and notes the map's size: how full the table is, at no extra read.</summary>
    public ConntrackTally? Tally { get; init; }

    internal bool MatchesRaw(ConntrackLayout l, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ClockSample clock)
    {
        if (Protocols is { Count: > 0 } && !Protocols.Contains((IpProtocol)key[0]))
        {
            return false;
        }

        var type = (ConntrackType)value[16];
        if (Types is { Count: > 0 } && !Types.Contains(type))
        {
            return false;
        }

        if (OlderThan is { } older && clock.AgeOf(ConntrackLayout.ReadU64(value, 8)) <= older)
        {
            return false;
        }

        if (KeyAddressesV4 is not null && l.AddressLength == 4
            && !KeyAddressesV4.Contains(BinaryPrimitives.ReadUInt32BigEndian(key[l.AddressAOffset..]))
            && !KeyAddressesV4.Contains(BinaryPrimitives.ReadUInt32BigEndian(key[l.AddressBOffset..])))
        {
            return false;
        }

        if ((_addressSet is { } addresses && !Touches(addresses, l, key, value, type))
            || (_workloadAddressSet is { } workloads && !Touches(workloads, l, key, value, type)))
        {
            return false;
        }

        if (Ports is { Count: > 0 })
        {
            int pa = ConntrackLayout.ReadU16(key, l.PortAOffset);
            int pb = ConntrackLayout.ReadU16(key, l.PortBOffset);
            bool service = type == ConntrackType.NatReverse && Ports.Contains(ConntrackLayout.ReadU16(value, l.OriginalPortOffset));
            if (!Ports.Contains(pa) && !Ports.Contains(pb) && !service)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Source, destination, or (in a NAT reverse entry) the service address is inside one of the prefixes.</summary>
    private static bool Touches(AddressSet set, ConntrackLayout l, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, ConntrackType type) =>
        set.Contains(key.Slice(l.AddressAOffset, l.AddressLength)) || set.Contains(key.Slice(l.AddressBOffset, l.AddressLength))
        || (type == ConntrackType.NatReverse && set.Contains(value.Slice(l.OriginalDestinationOffset, l.AddressLength)));

    /// <summary>-State on the raw bytes: the legs' bits by calico-bpf's rule (<see cref="ConntrackText.DeriveState(IpProtocol, ConntrackType, ConntrackFlags, uint, uint)"/>).</summary>
    internal bool MatchesRawState(ConntrackLayout l, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) =>
        States is not { Count: > 0 } || States.Contains(l.StateOf(key, value));

    /// <summary>Checks made on the decoded entry: state, and (after <see cref="Resolver"/> named it) the workload filter.</summary>
    internal bool MatchesDecoded(ConntrackEntry e) => (States is not { Count: > 0 } || States.Contains(e.State)) && MatchesWorkloads(e);

    /// <summary>Names the entry's ends with <see cref="Resolver"/> and checks the workload filter.</summary>
    internal bool MatchesWorkloads(ConntrackEntry e)
    {
        Resolver?.Annotate(e);
        return Workloads is null || Workloads.Matches(e);
    }
}

/// <summary>Streams a node's conntrack table through the version-aware decoder.</summary>
public static class ConntrackReader
{
    /// <summary>Finds the live conntrack map of the family (highest version, no _old pin).</summary>
    public static CalicoMapName FindMap(INodeDataplane node, bool ipv6)
    {
        return MapReading.Find(node, ipv6 ? MapCatalog.ConntrackV6 : MapCatalog.ConntrackV4, ipv6 ? "IPv6 conntrack" : "IPv4 conntrack",
            ipv6 ? "IPv6 is probably not enabled in Calico on this node; drop -IPv6." : null);
    }

    public static IEnumerable<ConntrackEntry> Read(INodeDataplane node, ConntrackQuery query, IEngineReporter? reporter = null,
        CancellationToken cancellationToken = default)
    {
        using ConntrackScan scan = Open(node, query, reporter);
        foreach (RawEntryBatch batch in scan.Batches(cancellationToken))
        {
            for (int i = 0; i < batch.Count; i++)
            {
                ReadOnlySpan<byte> key = batch.Key(i);
                ReadOnlySpan<byte> value = batch.Value(i);
                // Every filter but the workloads' names is decided on the raw bytes: only what passes becomes an object.
                if (!query.MatchesRaw(scan.Layout, key, value, scan.Clock) || !query.MatchesRawState(scan.Layout, key, value))
                {
                    continue;
                }

                ConntrackEntry entry = scan.Codec.Decode(key, value);
                if (query.MatchesWorkloads(entry))
                {
                    yield return entry;
                }
            }
        }
    }

    /// <summary>
    /// Opens the live conntrack map of the query's family for one read: its layout, the decoder of the
    /// node's release (warning where the pins leave the release open) and the node's clock.
    /// </summary>
    public static ConntrackScan Open(INodeDataplane node, ConntrackQuery query, IEngineReporter? reporter = null)
    {
        reporter ??= NullReporter.Instance;
        node.ExpectDump(query.IPv6 ? MapCatalog.ConntrackV6 : MapCatalog.ConntrackV4);
        CalicoMapName pin = FindMap(node, query.IPv6);
        IMapReader reader = node.OpenMapToDump(pin.PinName);
        try
        {
            BpfMapDescriptor d = reader.Descriptor;
            ConntrackLayout layout = ConntrackLayout.For(pin.PinName, pin.Version, d.KeySize, d.ValueSize);
            NodeRelease release = ReleaseInference.Of(node, reporter);
            ConntrackMeaning meaning = ConntrackMeaning.For(layout.Version, release.Release, out bool adjusted);
            if (release.Earliest is { } earliest && ConntrackMeaning.For(layout.Version, earliest) is var oldest
                && oldest.OffsetZeroIsCreated != meaning.OffsetZeroIsCreated)
            {
                // ct3 alone fits v3.24 to v3.30, and offset 0 changed meaning at v3.30 inside that range.
                reporter.Warning($"{node.Node}: the pinned maps fit Calico {oldest.Release.Line} to {meaning.Release.Line}, and {pin.PinName}'s first field is the creation time " +
                    $"up to v3.29 but the time a reset was seen from v3.30; it is read as in {meaning.Release.Line}. Give -CalicoVersion to be exact.");
            }

            if (adjusted && release.Exact)
            {
                reporter.Warning($"{node.Node} runs Calico {release.Release} ({release.Detail}), but {pin.PinName} is conntrack version {pin.Version}, " +
                    $"which Calico {ConntrackMeaning.ReleasesOf(pin.Version)} writes; it is decoded with the rules of {meaning.Release.Line}.");
            }

            reporter.Verbose($"Reading {pin.PinName} ({d.Type}, {d.KeySize}/{d.ValueSize} bytes, max {d.MaxEntries}) on {node.Node}, Calico {release}.");
            ClockSample clock = node.SampleClock();
            var codec = new ConntrackCodec(layout, node.Node, pin.PinName, clock, meaning.Release, node.PinDirectory);
            if (query.Tally is { } tally)
            {
                tally.Map = pin.PinName;
                tally.MaxEntries = (uint)d.MaxEntries;
            }

            return new ConntrackScan(reader, layout, codec, clock, meaning.Release, query.Tally);
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }
}

/// <summary>One read of a node's conntrack map (<see cref="ConntrackReader.Open"/>): its raw batches, and what decodes them.</summary>
public sealed class ConntrackScan : IDisposable
{
    private readonly IMapReader _reader;
    private readonly ConntrackTally? _tally;

    internal ConntrackScan(IMapReader reader, ConntrackLayout layout, ConntrackCodec codec, ClockSample clock, CalicoRelease release, ConntrackTally? tally)
    {
        _reader = reader;
        Layout = layout;
        Codec = codec;
        Clock = clock;
        Release = release;
        _tally = tally;
    }

    public ConntrackLayout Layout { get; }

    public ConntrackCodec Codec { get; }

    /// <summary>The node's clocks when the read began (ages and timestamps are taken against it).</summary>
    public ClockSample Clock { get; }

    /// <summary>The release whose rules decode the entries: the node's, moved into the range of the map's version.</summary>
    public CalicoRelease Release { get; }

    /// <summary>The map's entries, batch by batch (counted into the query's tally).</summary>
    public IEnumerable<RawEntryBatch> Batches(CancellationToken cancellationToken)
    {
        foreach (RawEntryBatch batch in _reader.ReadEntries(cancellationToken))
        {
            if (_tally is { } t)
            {
                t.Entries += batch.Count;
            }

            yield return batch;
        }
    }

    public void Dispose() => _reader.Dispose();
}
