namespace CalicoBpf;

/// <summary>Kernel BPF map types (enum bpf_map_type).</summary>
public enum BpfMapType : uint
{
    Unspecified = 0,
    Hash = 1,
    Array = 2,
    ProgramArray = 3,
    PerfEventArray = 4,
    PerCpuHash = 5,
    PerCpuArray = 6,
    StackTrace = 7,
    CgroupArray = 8,
    LruHash = 9,
    LruPerCpuHash = 10,
    LpmTrie = 11,
    ArrayOfMaps = 12,
    HashOfMaps = 13,
    DevMap = 14,
    SockMap = 15,
    CpuMap = 16,
    XskMap = 17,
    SockHash = 18,
    CgroupStorage = 19,
    ReusePortSockArray = 20,
    PerCpuCgroupStorage = 21,
    Queue = 22,
    Stack = 23,
    SkStorage = 24,
    DevMapHash = 25,
    StructOps = 26,
    RingBuffer = 27,
    InodeStorage = 28,
    TaskStorage = 29,
    BloomFilter = 30,
    UserRingBuffer = 31,
    CgroupStorage2 = 32,
    Arena = 33,
}

/// <summary>Properties of map types that decide how a map is read.</summary>
public static class BpfMapTypeExtensions
{
    /// <summary>Lookups return one value per possible CPU.</summary>
    public static bool IsPerCpu(this BpfMapType type) => type is BpfMapType.PerCpuHash
        or BpfMapType.PerCpuArray or BpfMapType.LruPerCpuHash or BpfMapType.PerCpuCgroupStorage;

    /// <summary>Entries hold data that can be dumped key by key (not programs, maps, sockets or a ring).</summary>
    public static bool IsIterable(this BpfMapType type) => type is BpfMapType.Hash or BpfMapType.Array
        or BpfMapType.PerCpuHash or BpfMapType.PerCpuArray or BpfMapType.LruHash or BpfMapType.LruPerCpuHash
        or BpfMapType.LpmTrie;

    /// <summary>Every slot always exists, so the entry count is max_entries.</summary>
    public static bool IsArray(this BpfMapType type) => type is BpfMapType.Array or BpfMapType.PerCpuArray;
}
