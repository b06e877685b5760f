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
            (16, 88) when version is 3 or 4 => new ConntrackLayout(version, false, false),
            (40, 128) when version is 3 or 4 => new ConntrackLayout(version, true, false),
            _ => null,
        };
        if (version > 4)
        {
            // Never decoded with an older layout because the sizes match: the next version (an upcoming
            // cali_v4_ct5 keeps ct4's sizes with the flags moved into one u32) means other things.
            throw new CalicoMapLayoutException(
                $"{mapName} is conntrack version {version}, newer than the versions CalicoBpf knows (2 to 4). Its {keySize}/{valueSize}-byte entries are not decoded with an older layout, " +
                "since a new version moves fields even where the sizes stay; update CalicoBpf, or read the map with calico-node's own calico-bpf.",
                mapName, keySize, valueSize);
        }

        if (layout is null)
        {
            throw new CalicoMapLayoutException(
                $"{mapName} (version {version}) has {keySize}-byte keys and {valueSize}-byte values, which match no conntrack layout CalicoBpf knows " +
                "(version 2: 16/64; versions 3 and 4: 16/88 for IPv4, 40/128 for IPv6). Its Calico release is newer or older than this module supports; update CalicoBpf.",
                mapName, keySize, valueSize);
        }

        return layout;
    }

    /// <summary>Where a leg's bit word (syn_seen, ack_seen, fin_seen, rst_seen ...) is, from the leg's start.</summary>
    public int LegBitsOffset => Legacy ? 4 : 16;

    /// <summary>The entry's TCP state from its raw bytes, by the rule the decoded entry's State follows.</summary>
    internal TcpState StateOf(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => ConntrackText.DeriveState(
        (IpProtocol)key[0], (ConntrackType)value[16], (ConntrackFlags)(ReadFlags(value) & FlagMask),
        ReadU32(value, LegAOffset + LegBitsOffset), ReadU32(value, LegBOffset + LegBitsOffset));

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

/// <summary>
/// What a conntrack map's bytes mean in one Calico release, beyond their offsets: the same map
/// version changed meaning between releases (checked in projectcalico/calico at each tag).
/// </summary>
/// <param name="Release">The release the meaning is for, within the range its map version was used in.</param>
/// <param name="OffsetZeroIsCreated">
/// Offset 0 of the value holds the creation time: versions 2 and 3 up to v3.29
/// (bpf-gpl/conntrack_types.h <c>__u64 created</c>); from v3.30 it is <c>rst_seen</c>, same map version 3.
/// </param>
/// <param name="OpenerByLegBit">
/// Version 2 (v3.23 and older) has no B-A flag (conntrack_types.h defines none): the opener is the
/// leg whose opener bit is set. Later versions set B-A on the tracking entry when the opener is B.
/// </param>
public sealed record ConntrackMeaning(CalicoRelease Release, bool OffsetZeroIsCreated, bool OpenerByLegBit)
{
    /// <summary>
    /// The Calico releases each conntrack map version was written by (reference 2.1.6): from First up
    /// to, not including, Until (null: still current).
    /// </summary>
    private static readonly (int Version, CalicoRelease First, CalicoRelease? Until)[] VersionReleases =
    {
        (2, CalicoRelease.Oldest, new CalicoRelease(3, 24, 0)),
        (3, new CalicoRelease(3, 24, 0), new CalicoRelease(3, 31, 0)),
        (4, new CalicoRelease(3, 31, 0), null),
    };

    /// <summary>The first release whose conntrack offset 0 is rst_seen (felix/bpf/conntrack/v3/map.go VoRSTSeen, v3.30.0).</summary>
    private static readonly CalicoRelease ResetSeenSince = new(3, 30, 0);

    /// <summary>
    /// The meaning of a map version in a release. A release outside the range the version was used in
    /// (a node cannot pin a version its release never wrote) is moved to the nearest end of that
    /// range, and <paramref name="adjusted"/> says so.
    /// </summary>
    public static ConntrackMeaning For(int version, CalicoRelease release, out bool adjusted)
    {
        (int v, CalicoRelease first, CalicoRelease? until) = VersionReleases.FirstOrDefault(x => x.Version == version, VersionReleases[^1]);
        CalicoRelease r = release;
        if (!release.AtLeast(first))
        {
            r = first;
        }
        else if (until is not null && release.AtLeast(until))
        {
            r = new CalicoRelease(until.Major, until.Minor - 1, 0);
        }

        adjusted = !ReferenceEquals(r, release);
        return new ConntrackMeaning(r, v <= 2 || (v == 3 && !r.AtLeast(ResetSeenSince)), v <= 2);
    }

    public static ConntrackMeaning For(int version, CalicoRelease release) => For(version, release, out _);

    /// <summary>The conntrack map version a release pins.</summary>
    public static int VersionFor(CalicoRelease release) =>
        VersionReleases.Last(v => release.AtLeast(v.First) || v.Version == 2).Version;

    /// <summary>The releases that pinned each conntrack map version, for <see cref="ReleaseInference"/>.</summary>
    internal static IEnumerable<(int Version, CalicoRelease First, CalicoRelease? Until)> Releases() => VersionReleases;

    /// <summary>The releases that wrote a conntrack map version, for messages ("v3.24 to v3.30").</summary>
    public static string ReleasesOf(int version)
    {
        foreach ((int v, CalicoRelease first, CalicoRelease? until) in VersionReleases)
        {
            if (v == version)
            {
                return until is null ? $"{first.Line} and later" : $"{first.Line} to v{until.Major}.{until.Minor - 1}";
            }
        }

        return "no release CalicoBpf knows";
    }
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
