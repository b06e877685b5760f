using CalicoBpf.Interop;

namespace CalicoBpf.Maps;

/// <summary>
/// Decodes conntrack entries from raw map bytes and encodes them back. The same decoder serves
/// bytes from the local kernel and from a remote node's bpftool dump; what the bytes mean follows
/// the node's Calico release (<see cref="ConntrackMeaning"/>).
/// </summary>
public sealed class ConntrackCodec
{
    private readonly ConntrackLayout _layout;
    private readonly string _node;
    private readonly string _mapName;
    private readonly string _pinDirectory;
    private readonly ClockSample _clock;
    private readonly ConntrackMeaning _meaning;

    /// <param name="release">The node's Calico release; null: the newest release that wrote this map version.</param>
    /// <param name="pinDirectory">Where the map is pinned on the node, stamped on each entry (its PinPath).</param>
    public ConntrackCodec(ConntrackLayout layout, string node, string mapName, ClockSample clock, CalicoRelease? release = null, string pinDirectory = "")
    {
        _layout = layout;
        _node = node;
        _mapName = mapName;
        _pinDirectory = pinDirectory;
        _clock = clock;
        _meaning = ConntrackMeaning.For(layout.Version, release ?? CalicoRelease.Newest);
    }

    public ConntrackLayout Layout => _layout;

    public ConntrackEntry Decode(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        ConntrackLayout l = _layout;
        if (key.Length != l.KeySize || value.Length < l.ValueSize)
        {
            throw new CalicoMapLayoutException(
                $"A {_mapName} entry has a {key.Length}-byte key and a {value.Length}-byte value; the layout expects {l.KeySize} and {l.ValueSize}.",
                _mapName, key.Length, value.Length);
        }

        value = value[..l.ValueSize];
        var protocol = (IpProtocol)key[0];
        IPAddress addrA = l.ReadAddress(key, l.AddressAOffset);
        IPAddress addrB = l.ReadAddress(key, l.AddressBOffset);
        int portA = ConntrackLayout.ReadU16(key, l.PortAOffset);
        int portB = ConntrackLayout.ReadU16(key, l.PortBOffset);
        var ctKey = new ConntrackKey(protocol, addrA, portA, addrB, portB);

        ulong ts0 = ConntrackLayout.ReadU64(value, 0);
        ulong lastSeen = ConntrackLayout.ReadU64(value, 8);
        var type = (ConntrackType)value[16];
        var flags = (ConntrackFlags)(ConntrackLayout.ReadFlags(value) & l.FlagMask);

        ConntrackLeg legA = ConntrackLeg.Empty;
        ConntrackLeg legB = ConntrackLeg.Empty;
        IPAddress? service = null;
        int? servicePort = null;
        IPAddress? tunnel = null;
        IPAddress? origSource = null;
        int? origSourcePort = null;
        int? natSourcePort = null;
        ConntrackKey? reverseKey = null;

        if (type == ConntrackType.NatForward)
        {
            reverseKey = DecodeKey(value.Slice(l.ReverseKeyOffset, l.KeySize));
            int nsp = ConntrackLayout.ReadU16(value, l.NatSourcePortOffset);
            natSourcePort = nsp == 0 ? null : nsp;
        }
        else
        {
            legA = DecodeLeg(value.Slice(l.LegAOffset, l.LegSize));
            legB = DecodeLeg(value.Slice(l.LegBOffset, l.LegSize));
            if (type == ConntrackType.NatReverse)
            {
                service = l.ReadAddress(value, l.OriginalDestinationOffset);
                servicePort = ConntrackLayout.ReadU16(value, l.OriginalPortOffset);
                tunnel = NonZero(l.ReadAddress(value, l.TunnelOffset));
                origSource = NonZero(l.ReadAddress(value, l.OriginalSourceAddressOffset));
                int osp = ConntrackLayout.ReadU16(value, l.OriginalSourcePortOffset);
                origSourcePort = osp == 0 ? null : osp;
            }
        }

        bool sourceIsB = type == ConntrackType.NatForward ? ClientIsB(ctKey, reverseKey!, natSourcePort)
            : _meaning.OpenerByLegBit ? legB.Opener && !legA.Opener
            : (flags & ConntrackFlags.BA) != 0;
        (IPAddress src, int sport, IPAddress dst, int dport) = sourceIsB ? (addrB, portB, addrA, portA) : (addrA, portA, addrB, portB);
        if (type == ConntrackType.NatReverse)
        {
            // Calico writes the client's original source into every NAT_REV entry (bpf-gpl/conntrack.h
            // ct_value.orig_sip/orig_sport = ct_ctx->orig_src/orig_sport), changed or not: as written
            // by its real programs (tests/fixtures/realcalico). Only a different one is a change.
            origSource = origSource is not null && !origSource.Equals(src) ? origSource : null;
            origSourcePort = origSourcePort is { } o && o != sport ? o : null;
        }

        if (type == ConntrackType.NatForward)
        {
            // The forward entry is keyed by the pre-DNAT tuple: its destination is the service.
            service = dst;
            servicePort = dport;
        }

        return new ConntrackEntry
        {
            Node = _node,
            Protocol = protocol,
            Type = type,
            SourceAddressValue = src,
            SourcePort = sport,
            DestinationAddressValue = dst,
            DestinationPort = dport,
            ServiceAddressValue = service,
            ServicePort = servicePort,
            TunnelAddressValue = tunnel,
            OriginalSourceAddressValue = origSource,
            OriginalSourcePort = origSourcePort,
            NatSourcePort = natSourcePort,
            ReverseKey = reverseKey,
            Flags = flags,
            LastSeenNanoseconds = lastSeen,
            LastSeen = _clock.WallTimeOf(lastSeen),
            AgeValue = _clock.AgeOf(lastSeen),
            ResetSeenNanoseconds = _meaning.OffsetZeroIsCreated ? 0 : ts0,
            ResetSeen = !_meaning.OffsetZeroIsCreated && ts0 != 0 ? _clock.WallTimeOf(ts0) : null,
            CreatedNanoseconds = _meaning.OffsetZeroIsCreated ? ts0 : 0,
            Created = _meaning.OffsetZeroIsCreated && ts0 != 0 ? _clock.WallTimeOf(ts0) : null,
            Forward = sourceIsB ? legB : legA,
            Reverse = sourceIsB ? legA : legB,
            Key = ctKey,
            MapName = _mapName,
            PinPath = _pinDirectory,
            MapVersion = l.Version,
            Release = _meaning.Release,
            RawKey = key.ToArray(),
            RawValue = value.ToArray(),
        };
    }

    /// <summary>
    /// Which end of a NAT forward entry is the client. Calico never sets B-A on these (bpf-gpl/conntrack.h
    /// calico_ct_create_nat_fwd only sorts the key), so, as felix/bpf/conntrack/cleanup.go does, the
    /// client is the end that also stands in the reverse key; with host source-port NAT the reverse
    /// key has the rewritten port (nat_sport) instead. Checked A then B against the reverse key's A,
    /// then its B. When neither end is there (the client address was rewritten too), A is taken.
    /// </summary>
    internal static bool ClientIsB(ConntrackKey key, ConntrackKey reverse, int? natSourcePort)
    {
        bool Same(IPAddress address, int port, IPAddress revAddress, int revPort) =>
            address.Equals(revAddress) && (natSourcePort ?? port) == revPort;

        if (Same(key.AddressAValue, key.PortA, reverse.AddressAValue, reverse.PortA))
        {
            return false;
        }

        if (Same(key.AddressBValue, key.PortB, reverse.AddressAValue, reverse.PortA))
        {
            return true;
        }

        return !Same(key.AddressAValue, key.PortA, reverse.AddressBValue, reverse.PortB) && Same(key.AddressBValue, key.PortB, reverse.AddressBValue, reverse.PortB);
    }

    private ConntrackKey DecodeKey(ReadOnlySpan<byte> key)
    {
        ConntrackLayout l = _layout;
        return new ConntrackKey((IpProtocol)key[0], l.ReadAddress(key, l.AddressAOffset), ConntrackLayout.ReadU16(key, l.PortAOffset),
            l.ReadAddress(key, l.AddressBOffset), ConntrackLayout.ReadU16(key, l.PortBOffset));
    }

    private ConntrackLeg DecodeLeg(ReadOnlySpan<byte> leg)
    {
        // Version 2 legs: seqno @0, bits @4, ifindex @8. Later: bytes @0, packets @8, seqno @12, bits @16, ifindex @20.
        int b = _layout.Legacy ? 0 : 12;
        uint bits = ConntrackLayout.ReadU32(leg, _layout.LegBitsOffset);
        return new ConntrackLeg
        {
            Bytes = _layout.Legacy ? 0 : ConntrackLayout.ReadU64(leg, 0),
            Packets = _layout.Legacy ? 0 : ConntrackLayout.ReadU32(leg, 8),
            SequenceNumber = BinaryPrimitives.ReadUInt32BigEndian(leg[b..]),
            SynSeen = (bits & 0x1) != 0,
            AckSeen = (bits & 0x2) != 0,
            FinSeen = (bits & 0x4) != 0,
            RstSeen = (bits & 0x8) != 0,
            Approved = (bits & 0x10) != 0,
            Opener = (bits & 0x20) != 0,
            Workload = !_layout.Legacy && (bits & 0x40) != 0,
            IfIndex = (int)ConntrackLayout.ReadU32(leg, b + 8),
        };
    }

    private static IPAddress? NonZero(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int n);
        return b[..n].IndexOfAnyExcept((byte)0) < 0 ? null : address;
    }

    /// <summary>
    /// Encodes an entry as Calico's programs write it (bpf-gpl/conntrack.h): A is the side that sorts
    /// first (addresses compared as little-endian u32 words, then ports); the tracking entry (Normal,
    /// NatReverse) gets B-A when its opener is B, from conntrack version 3 on; a NatForward entry never
    /// does; the opener's leg has its opener bit. Offset 0 is the creation time or rst_seen as the
    /// release has it (<paramref name="release"/>, else the entry's <see cref="ConntrackEntry.Release"/>).
    /// Used by fixtures, the demo and tests; never on a real node's maps.
    /// </summary>
    public static void Encode(ConntrackLayout l, ConntrackEntry e, Span<byte> key, Span<byte> value, CalicoRelease? release = null) =>
        Encode(l, e, key, value, ConntrackMeaning.For(l.Version, release ?? e.Release));

    /// <summary>The same with the meaning worked out once, for writers of many entries.</summary>
    public static void Encode(ConntrackLayout l, ConntrackEntry e, Span<byte> key, Span<byte> value, ConntrackMeaning meaning)
    {
        if (key.Length != l.KeySize || value.Length != l.ValueSize)
        {
            throw new ArgumentException($"Buffers must be {l.KeySize} and {l.ValueSize} bytes.");
        }

        key.Clear();
        value.Clear();
        bool openerIsA = SortsFirst(e.SourceAddressValue, e.SourcePort, e.DestinationAddressValue, e.DestinationPort);
        WriteKey(l, key, e.Protocol, openerIsA ? e.SourceAddressValue : e.DestinationAddressValue, openerIsA ? e.SourcePort : e.DestinationPort,
            openerIsA ? e.DestinationAddressValue : e.SourceAddressValue, openerIsA ? e.DestinationPort : e.SourcePort);

        bool tracking = e.Type != ConntrackType.NatForward;
        ConntrackFlags flags = (e.Flags & ~ConntrackFlags.BA)
            | (tracking && !openerIsA && !meaning.OpenerByLegBit ? ConntrackFlags.BA : ConntrackFlags.None);
        BinaryPrimitives.WriteUInt64LittleEndian(value, meaning.OffsetZeroIsCreated ? e.CreatedNanoseconds : e.ResetSeenNanoseconds);
        BinaryPrimitives.WriteUInt64LittleEndian(value[8..], e.LastSeenNanoseconds);
        value[16] = (byte)e.Type;
        ConntrackLayout.WriteFlags(value, (uint)flags & l.FlagMask);

        if (!tracking)
        {
            ConntrackKey rk = e.ReverseKey ?? throw new ArgumentException("A NatForward entry needs its ReverseKey.", nameof(e));
            WriteKey(l, value.Slice(l.ReverseKeyOffset, l.KeySize), rk.Protocol, rk.AddressAValue, rk.PortA, rk.AddressBValue, rk.PortB);
            BinaryPrimitives.WriteUInt16LittleEndian(value[l.NatSourcePortOffset..], (ushort)(e.NatSourcePort ?? 0));
            return;
        }

        ConntrackLeg opener = e.Forward with { Opener = true };
        EncodeLeg(l, value.Slice(l.LegAOffset, l.LegSize), openerIsA ? opener : e.Reverse);
        EncodeLeg(l, value.Slice(l.LegBOffset, l.LegSize), openerIsA ? e.Reverse : opener);
        if (e.Type == ConntrackType.NatReverse)
        {
            WriteAddress(l, value, l.TunnelOffset, e.TunnelAddressValue);
            WriteAddress(l, value, l.OriginalDestinationOffset, e.ServiceAddressValue);
            BinaryPrimitives.WriteUInt16LittleEndian(value[l.OriginalPortOffset..], (ushort)(e.ServicePort ?? 0));
            // Calico writes the original source even when nothing changed it: then it is the client's own.
            BinaryPrimitives.WriteUInt16LittleEndian(value[l.OriginalSourcePortOffset..], (ushort)(e.OriginalSourcePort ?? e.SourcePort));
            WriteAddress(l, value, l.OriginalSourceAddressOffset, e.OriginalSourceAddressValue ?? e.SourceAddressValue);
        }
    }

    /// <summary>Writes a key in the map's byte layout, sides as given.</summary>
    public static void WriteKey(ConntrackLayout l, Span<byte> key, IpProtocol protocol, IPAddress a, int portA, IPAddress b, int portB)
    {
        key.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(key, (byte)protocol);
        WriteAddress(l, key, l.AddressAOffset, a);
        WriteAddress(l, key, l.AddressBOffset, b);
        BinaryPrimitives.WriteUInt16LittleEndian(key[l.PortAOffset..], (ushort)portA);
        BinaryPrimitives.WriteUInt16LittleEndian(key[l.PortBOffset..], (ushort)portB);
    }

    /// <summary>The dataplane's ordering: addresses as little-endian u32 words, word by word, then ports.</summary>
    public static bool SortsFirst(IPAddress src, int srcPort, IPAddress dst, int dstPort)
    {
        Span<byte> s = stackalloc byte[16];
        Span<byte> d = stackalloc byte[16];
        src.TryWriteBytes(s, out int n);
        dst.TryWriteBytes(d, out int m);
        if (n != m)
        {
            throw new ArgumentException("Source and destination must be of one address family.");
        }

        for (int w = 0; w < n; w += 4)
        {
            uint sw = BinaryPrimitives.ReadUInt32LittleEndian(s[w..]);
            uint dw = BinaryPrimitives.ReadUInt32LittleEndian(d[w..]);
            if (sw != dw)
            {
                return sw < dw;
            }
        }

        return srcPort < dstPort;
    }

    private static void EncodeLeg(ConntrackLayout l, Span<byte> leg, ConntrackLeg v)
    {
        int b = l.Legacy ? 0 : 12;
        if (!l.Legacy)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(leg, v.Bytes);
            BinaryPrimitives.WriteUInt32LittleEndian(leg[8..], v.Packets);
        }

        BinaryPrimitives.WriteUInt32BigEndian(leg[b..], v.SequenceNumber);
        uint bits = (v.SynSeen ? 0x1u : 0) | (v.AckSeen ? 0x2u : 0) | (v.FinSeen ? 0x4u : 0) | (v.RstSeen ? 0x8u : 0)
            | (v.Approved ? 0x10u : 0) | (v.Opener ? 0x20u : 0) | (!l.Legacy && v.Workload ? 0x40u : 0);
        BinaryPrimitives.WriteUInt32LittleEndian(leg[(b + 4)..], bits);
        BinaryPrimitives.WriteUInt32LittleEndian(leg[(b + 8)..], (uint)v.IfIndex);
    }

    private static void WriteAddress(ConntrackLayout l, Span<byte> data, int offset, IPAddress? address)
    {
        if (address is null)
        {
            return;
        }

        if (!address.TryWriteBytes(data.Slice(offset, l.AddressLength), out int written) || written != l.AddressLength)
        {
            throw new ArgumentException($"{address} does not fit a {(l.IPv6 ? "IPv6" : "IPv4")} conntrack map.");
        }
    }
}
