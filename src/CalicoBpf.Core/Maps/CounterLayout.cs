namespace CalicoBpf.Maps;

/// <summary>One counter index of cali_counters (reference section 3.1; the list is append-only).</summary>
public sealed record CounterDefinition(int Index, string Id, CounterCategory Category, string Caption, bool Printed = true);

/// <summary>
/// cali_counters: key (ifindex u32, hook u32), per-CPU value of N u64 counters, N = value_size / 8.
/// Hooks: 0 TC ingress, 1 TC egress, 2 XDP.
/// </summary>
public static class CounterLayout
{
    public const int KeySize = 8;
    public const int HookIngress = 0;
    public const int HookEgress = 1;
    public const int HookXdp = 2;

    public static readonly IReadOnlyList<CounterDefinition> Definitions = new CounterDefinition[]
    {
        new(0, "TotalPackets", CounterCategory.Total, "packets"),
        new(1, "AcceptedByFailsafe", CounterCategory.Accepted, "by failsafe"),
        new(2, "AcceptedByPolicy", CounterCategory.Accepted, "by policy"),
        new(3, "AcceptedByAnotherProgram", CounterCategory.Accepted, "by another program"),
        new(4, "DroppedByPolicy", CounterCategory.Dropped, "by policy"),
        new(5, "DroppedShortPacket", CounterCategory.Dropped, "too short packets"),
        new(6, "DroppedFailedCSUM", CounterCategory.Dropped, "incorrect checksum"),
        new(7, "DroppedIPOptions", CounterCategory.Dropped, "packets with unsupported IP options"),
        new(8, "DroppedIPMalformed", CounterCategory.Dropped, "malformed IP packets"),
        new(9, "DroppedFailedEncap", CounterCategory.Dropped, "failed encapsulation"),
        new(10, "DroppedFailedDecap", CounterCategory.Dropped, "failed decapsulation"),
        new(11, "DroppedUnauthSource", CounterCategory.Dropped, "packets with unknown source"),
        new(12, "DroppedUnknownRoute", CounterCategory.Dropped, "packets with unknown route"),
        new(13, "DroppedBlackholeRoute", CounterCategory.Dropped, "packets hitting blackhole route"),
        new(14, "SourceCollisionHit", CounterCategory.Other, "packets hitting NAT source collision"),
        new(15, "SourceCollisionResolutionFailed", CounterCategory.Dropped, "NAT source collision resolution failed"),
        new(16, "ConntrackCreateFailed", CounterCategory.Dropped, "failed to create conntrack"),
        new(17, "Redirect", CounterCategory.Redirect, "plain"),
        new(18, "RedirectNeigh", CounterCategory.Redirect, "neigh"),
        new(19, "RedirectPeer", CounterCategory.Redirect, "peer"),
        new(20, "DroppedFragWait", CounterCategory.Dropped, "fragment of yet incomplete packet"),
        new(21, "DroppedFragReorder", CounterCategory.Dropped, "fragment out of order within host"),
        new(22, "DroppedFragUnsupported", CounterCategory.Dropped, "fragments not supported"),
        new(23, "DroppedQoS", CounterCategory.Dropped, "QoS control limit"),
        new(24, "Reserved1", CounterCategory.Other, "reserved", Printed: false),
        new(25, "DroppedMaglevNoBackend", CounterCategory.Dropped, "Maglev lookup found no backends for service IP"),
        new(26, "DroppedNoHostIP", CounterCategory.Dropped, "VXLAN encap when host IP unknown"),
    };

    /// <summary>
    /// The counters map each release pins: its version and how many u64 counters a value holds
    /// (felix/bpf/counters MaxCounterNumber and the map's Version at each tag). v3.23 has no counters
    /// map. Releases from First up to the next row.
    /// </summary>
    private static readonly (CalicoRelease First, int Version, int Counters)[] ReleaseCounters =
    {
        (new CalicoRelease(3, 24, 0), 1, 14),
        (new CalicoRelease(3, 26, 0), 2, 14),
        (new CalicoRelease(3, 30, 0), 3, 17),
        (new CalicoRelease(3, 31, 0), 5, 25),
        (new CalicoRelease(3, 32, 0), 6, 26),
        (new CalicoRelease(3, 32, 1), 6, 27),
    };

    /// <summary>
    /// Why a counter counts, in Calico's words for <paramref name="release"/>: a counter's index is its
    /// reason code (counters.h counts by calico_reason), so the reasons.h text ("dropped by policy"); null
    /// for an id this list does not know or a code the release does not have.
    /// </summary>
    public static string? Reason(string id, CalicoRelease release) =>
        Definitions.FirstOrDefault(d => d.Id == id) is { } d ? CalicoReasons.Name(d.Index, release) : null;

    /// <summary>The counters map (version, counters per value) a release pins; null for releases before counters existed.</summary>
    public static (int Version, int Counters)? ForRelease(CalicoRelease release)
    {
        (int Version, int Counters)? found = null;
        foreach ((CalicoRelease first, int version, int counters) in ReleaseCounters)
        {
            if (release.AtLeast(first))
            {
                found = (version, counters);
            }
        }

        return found;
    }

    /// <summary>The releases that pinned a counters map version, for <see cref="ReleaseInference"/>: from First up to, not including, Until.</summary>
    internal static IEnumerable<(int Version, CalicoRelease First, CalicoRelease? Until)> VersionReleases()
    {
        for (int i = 0; i < ReleaseCounters.Length; i++)
        {
            (CalicoRelease first, int version, _) = ReleaseCounters[i];
            if (i > 0 && ReleaseCounters[i - 1].Version == version)
            {
                continue;
            }

            int next = Array.FindIndex(ReleaseCounters, i, r => r.Version != version);
            yield return (version, first, next < 0 ? null : ReleaseCounters[next].First);
        }
    }

    /// <summary>
    /// The definition of an index in a release: where reasons.h numbers index 13 ACCEPTED_BY_XDP
    /// (v3.24 to v3.27.3 and v3.28.0, "not used by counters map"), the counter is unused and not shown.
    /// </summary>
    public static CounterDefinition Define(int index, CalicoRelease release) =>
        index == 13 && CalicoReasons.Id(13, release) != "BLACK_HOLE"
            ? new CounterDefinition(13, "Unused13", CounterCategory.Other, "unused (reasons.h: accepted by XDP)", Printed: false)
            : Define(index);

    /// <summary>The definition of an index; indices past the table are a newer Calico's counters.</summary>
    public static CounterDefinition Define(int index) => index < Definitions.Count
        ? Definitions[index]
        : new CounterDefinition(index, "Counter" + index, CounterCategory.Unknown, "counter " + index);

    /// <summary>Checks a counters map's sizes and returns its counter count.</summary>
    public static int CounterCount(string mapName, int keySize, int valueSize)
    {
        if (keySize != KeySize || valueSize <= 0 || valueSize % 8 != 0)
        {
            throw new CalicoMapLayoutException(
                $"{mapName} has {keySize}-byte keys and {valueSize}-byte values; a Calico counters map has 8-byte keys (ifindex, hook) and values of N x 8 bytes. Update CalicoBpf for this Calico release.",
                mapName, keySize, valueSize);
        }

        return valueSize / 8;
    }

    public static (int IfIndex, int Hook) DecodeKey(ReadOnlySpan<byte> key) =>
        ((int)BinaryPrimitives.ReadUInt32LittleEndian(key), (int)BinaryPrimitives.ReadUInt32LittleEndian(key[4..]));

    public static void EncodeKey(Span<byte> key, int ifIndex, int hook)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)ifIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(key[4..], (uint)hook);
    }

    /// <summary>Adds every CPU's copy of each counter (full 64 bits, unlike calico-bpf's 32-bit quirk) into <paramref name="sums"/>.</summary>
    public static void SumCpus(ReadOnlySpan<byte> value, int counters, int cpus, int slot, Span<ulong> sums)
    {
        for (int cpu = 0; cpu < cpus; cpu++)
        {
            ReadOnlySpan<byte> copy = value.Slice(cpu * slot, counters * 8);
            for (int i = 0; i < counters; i++)
            {
                sums[i] += BinaryPrimitives.ReadUInt64LittleEndian(copy[(i * 8)..]);
            }
        }
    }

    /// <summary>Encodes per-CPU counter values (fixtures and the demo): values[cpu][index].</summary>
    public static byte[] EncodeValue(int counters, int cpus, Func<int, int, ulong> valueOf)
    {
        int slot = (counters * 8 + 7) & ~7;
        byte[] value = new byte[slot * cpus];
        for (int cpu = 0; cpu < cpus; cpu++)
        {
            for (int i = 0; i < counters; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(cpu * slot + i * 8), valueOf(cpu, i));
            }
        }

        return value;
    }
}
