using System.Buffers.Binary;
using System.Net;

namespace CalicoBpf.Maps;

/// <summary>
/// Byte layout of one conntrack map version and family (reference section 2.1). Versions 3 and 4
/// share their bytes (version 3 has only 16 flag bits); version 2 is IPv4-only with 12-byte legs.
/// A new Calico conntrack version is one new entry in <see cref="For"/>.
/// </summary>
public sealed class ConntrackLayout
{
    private ConntrackLayout(int version, bool ipv6, bool legacy)
    {
        Version = version;
        IPv6 = ipv6;
        Legacy = legacy;
        AddressLength = ipv6 ? 16 : 4;
        KeySize = 4 + (2 * AddressLength) + 4;
        ValueSize = legacy ? 64 : ipv6 ? 128 : 88;
        FlagMask = version >= 4 ? 0xffffffffu : 0xffffu;
    }

    public int Version { get; }
    public bool IPv6 { get; }
    /// <summary>Version 2: created timestamp, 12-byte legs without counters, different NAT offsets.</summary>
    public bool Legacy { get; }
    public int AddressLength { get; }
    public int KeySize { get; }
    public int ValueSize { get; }
    /// <summary>Flag bits the version defines; the rest of the word is padding.</summary>
    public uint FlagMask { get; }

    public int AddressAOffset => 4;
    public int AddressBOffset => 4 + AddressLength;
    public int PortAOffset => 4 + (2 * AddressLength);
    public int PortBOffset => 6 + (2 * AddressLength);

    public int LegAOffset => 24;
    public int LegBOffset => Legacy ? 36 : 48;
    public int LegSize => Legacy ? 12 : 24;

    public int TunnelOffset => Legacy ? 56 : 72;
    public int OriginalDestinationOffset => Legacy ? 48 : 72 + AddressLength;
    public int OriginalPortOffset => Legacy ? 52 : 72 + (2 * AddressLength);
    public int OriginalSourcePortOffset => OriginalPortOffset + 2;
    public int OriginalSourceAddressOffset => Legacy ? 60 : 76 + (2 * AddressLength);
    public int ReverseKeyOffset => 24;
    public int NatSourcePortOffset => 24 + KeySize;

    /// <summary>
    /// The layout for a map, chosen by its sizes and checked against its version. Throws
    /// <see cref="CalicoMapLayoutException"/> when the sizes fit no layout CalicoBpf knows.
    /// </summary>
    public static ConntrackLayout For(string mapName, int version, int keySize, int valueSize)
    {
        ConntrackLayout? layout = (keySize, valueSize) switch
        {
            (16, 64) when version <= 2 => new ConntrackLayout(2, false, true),
            (16, 88) when version >= 3 => new ConntrackLayout(version, false, false),
            (40, 128) when version >= 3 => new ConntrackLayout(version, true, false),
            _ => null,
        };
        if (layout is null)
        {
            throw new CalicoMapLayoutException(
                $"{mapName} (version {version}) has {keySize}-byte keys and {valueSize}-byte values, which match no conntrack layout CalicoBpf knows " +
                "(version 2: 16/64; versions 3 and 4: 16/88 for IPv4, 40/128 for IPv6). Its Calico release is newer or older than this module supports; update CalicoBpf.",
                mapName, keySize, valueSize);
        }

        return layout;
    }

    internal IPAddress ReadAddress(ReadOnlySpan<byte> data, int offset) => new(data.Slice(offset, AddressLength));

    internal static uint ReadFlags(ReadOnlySpan<byte> value) =>
        value[17] | ((uint)value[23] << 8) | ((uint)value[18] << 16) | ((uint)value[19] << 24);

    internal static void WriteFlags(Span<byte> value, uint flags)
    {
        value[17] = (byte)flags;
        value[23] = (byte)(flags >> 8);
        value[18] = (byte)(flags >> 16);
        value[19] = (byte)(flags >> 24);
    }

    internal static ushort ReadU16(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt16LittleEndian(d[o..]);

    internal static uint ReadU32(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt32LittleEndian(d[o..]);

    internal static ulong ReadU64(ReadOnlySpan<byte> d, int o) => BinaryPrimitives.ReadUInt64LittleEndian(d[o..]);
}

/// <summary>A pinned Calico map's sizes match no layout this module knows.</summary>
public sealed class CalicoMapLayoutException : Exception
{
    public CalicoMapLayoutException(string message, string mapName, int keySize, int valueSize)
        : base(message)
    {
        MapName = mapName;
        KeySize = keySize;
        ValueSize = valueSize;
    }

    public string MapName { get; }
    public int KeySize { get; }
    public int ValueSize { get; }
}
