using CalicoBpf.Interop;

namespace CalicoBpf.Maps;

/// <summary>How Felix creates one of its maps: type, sizes, default max_entries, flags.</summary>
public sealed record MapSpec(string BaseName, int Version, BpfMapType Type, int KeySize, int ValueSize, int MaxEntries, bool NoPrealloc)
{
    public string PinName => CalicoMapName.Versioned(BaseName, Version);

    public uint Flags => NoPrealloc ? BpfSyscall.BPF_F_NO_PREALLOC : 0;
}

/// <summary>
/// Calico's data maps as releases create them (reference section 0 and the version history in
/// sections 2 and 3). Fixtures, the demo and the simulated nodes create maps from this table so that
/// names, types and sizes are exactly Calico's.
/// </summary>
public static class MapSpecs
{
    /// <summary>Maps of the current layout (v3.32.1 and later).</summary>
    public static readonly IReadOnlyList<MapSpec> Current = new MapSpec[]
    {
        new("cali_v4_ct", 4, BpfMapType.LruHash, 16, 88, 512000, false),
        new("cali_v6_ct", 4, BpfMapType.LruHash, 40, 128, 512000, false),
        new("cali_v4_ccq", 2, BpfMapType.Hash, 16, 32, 100000, true),
        new("cali_counters", 6, BpfMapType.PerCpuHash, 8, 216, 20000, false),
        new("cali_rule_ctrs", 2, BpfMapType.PerCpuHash, 8, 8, 10000, false),
        new("cali_v4_nat_fe", 3, BpfMapType.LpmTrie, 16, 20, 65536, true),
        new("cali_v4_nat_be", 1, BpfMapType.Hash, 8, 8, 262144, true),
        new("cali_v4_nat_aff", 1, BpfMapType.LruHash, 16, 16, 65536, false),
        new("cali_v4_mglv", 2, BpfMapType.Hash, 8, 8, 1009, true),
        new("cali_v4_routes", 1, BpfMapType.LpmTrie, 8, 8, 262144, true),
        new("cali_v4_ip_sets", 1, BpfMapType.LpmTrie, 20, 4, 1048576, true),
        new("cali_v4_arp", 2, BpfMapType.LruHash, 8, 12, 10000, false),
        new("cali_iface", 4, BpfMapType.Hash, 4, 52, 1000, true),
        new("cali_v4_fsafes", 2, BpfMapType.LpmTrie, 12, 4, 65536, true),
        new("cali_progs_ing", 2, BpfMapType.ProgramArray, 4, 4, 400, false),
        new("cali_jump_ing", 2, BpfMapType.ProgramArray, 4, 4, 240000, false),
        new("cali_state", 6, BpfMapType.PerCpuArray, 4, 512, 2, false),
    };

    /// <summary>The conntrack map of a version and family.</summary>
    public static MapSpec Conntrack(int version, bool ipv6) => (version, ipv6) switch
    {
        (2, false) => new MapSpec("cali_v4_ct", 2, BpfMapType.Hash, 16, 64, 512000, true),
        (3, _) => new MapSpec(ipv6 ? "cali_v6_ct" : "cali_v4_ct", 3, BpfMapType.Hash, ipv6 ? 40 : 16, ipv6 ? 128 : 88, 512000, true),
        (>= 4, _) => new MapSpec(ipv6 ? "cali_v6_ct" : "cali_v4_ct", version, BpfMapType.LruHash, ipv6 ? 40 : 16, ipv6 ? 128 : 88, 512000, false),
        _ => throw new ArgumentOutOfRangeException(nameof(version), $"Calico has no conntrack version {version} for {(ipv6 ? "IPv6" : "IPv4")}."),
    };

    /// <summary>The counters map as a release line created it: v3.26-v3.29 version 2 with 14 counters, v3.30 version 3 with 17,
    /// v3.31 version 5 with 25, v3.32.0 version 6 with 26, v3.32.1+ version 6 with 27.</summary>
    public static MapSpec Counters(int version, int counters) =>
        new("cali_counters", version, BpfMapType.PerCpuHash, 8, counters * 8, 20000, false);
}
