namespace CalicoBpf.Interop;

/// <summary>bpf(2) commands used by the core (include/uapi/linux/bpf.h).</summary>
internal enum BpfCommand
{
    MapCreate = 0,
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    MapGetNextKey = 4,
    ObjPin = 6,
    ObjGet = 7,
    ProgLoad = 5,
    ProgGetFdById = 13,
    MapGetFdById = 14,
    ObjGetInfoByFd = 15,
    ProgQuery = 16,
    MapLookupBatch = 24,
    LinkCreate = 28,
    EnableStats = 32,
    LinkDetach = 34,
}

/// <summary>Typed attribute blocks for each bpf(2) command, laid out as the kernel's union bpf_attr.</summary>
internal static unsafe class BpfSyscall
{
    [StructLayout(LayoutKind.Explicit, Size = 72)]
    internal struct MapCreateAttr
    {
        [FieldOffset(0)] public uint MapType;
        [FieldOffset(4)] public uint KeySize;
        [FieldOffset(8)] public uint ValueSize;
        [FieldOffset(12)] public uint MaxEntries;
        [FieldOffset(16)] public uint MapFlags;
        [FieldOffset(20)] public uint InnerMapFd;
        [FieldOffset(24)] public uint NumaNode;
        [FieldOffset(28)] public fixed byte MapName[16];
        [FieldOffset(44)] public uint MapIfIndex;
        [FieldOffset(48)] public uint BtfFd;
        [FieldOffset(52)] public uint BtfKeyTypeId;
        [FieldOffset(56)] public uint BtfValueTypeId;
        [FieldOffset(60)] public uint BtfVmlinuxValueTypeId;
        [FieldOffset(64)] public ulong MapExtra;
    }

    [StructLayout(LayoutKind.Explicit, Size = 32)]
    internal struct ElemAttr
    {
        [FieldOffset(0)] public uint MapFd;
        [FieldOffset(8)] public ulong Key;
        [FieldOffset(16)] public ulong ValueOrNextKey;
        [FieldOffset(24)] public ulong Flags;
    }

    [StructLayout(LayoutKind.Explicit, Size = 56)]
    internal struct BatchAttr
    {
        [FieldOffset(0)] public ulong InBatch;
        [FieldOffset(8)] public ulong OutBatch;
        [FieldOffset(16)] public ulong Keys;
        [FieldOffset(24)] public ulong Values;
        [FieldOffset(32)] public uint Count;
        [FieldOffset(36)] public uint MapFd;
        [FieldOffset(40)] public ulong ElemFlags;
        [FieldOffset(48)] public ulong Flags;
    }

    [StructLayout(LayoutKind.Explicit, Size = 16)]
    internal struct ObjAttr
    {
        [FieldOffset(0)] public ulong PathName;
        [FieldOffset(8)] public uint BpfFd;
        [FieldOffset(12)] public uint FileFlags;
    }

    [StructLayout(LayoutKind.Explicit, Size = 16)]
    internal struct InfoAttr
    {
        [FieldOffset(0)] public uint BpfFd;
        [FieldOffset(4)] public uint InfoLen;
        [FieldOffset(8)] public ulong Info;
    }

    /// <summary>BPF_PROG_QUERY: TargetFd is the target ifindex for TCX and netkit; link ids and the revision came with kernel 6.6.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    internal struct QueryAttr
    {
        [FieldOffset(0)] public uint TargetFd;
        [FieldOffset(4)] public uint AttachType;
        [FieldOffset(8)] public uint QueryFlags;
        [FieldOffset(12)] public uint AttachFlags;
        [FieldOffset(16)] public ulong ProgIds;
        [FieldOffset(24)] public uint ProgCount;
        [FieldOffset(32)] public ulong ProgAttachFlags;
        [FieldOffset(40)] public ulong LinkIds;
        [FieldOffset(48)] public ulong LinkAttachFlags;
        [FieldOffset(56)] public ulong Revision;
    }

    [StructLayout(LayoutKind.Explicit, Size = 12)]
    internal struct GetByIdAttr
    {
        [FieldOffset(0)] public uint Id;
        [FieldOffset(4)] public uint NextId;
        [FieldOffset(8)] public uint OpenFlags;
    }

    [StructLayout(LayoutKind.Explicit, Size = 72)]
    internal struct ProgLoadAttr
    {
        [FieldOffset(0)] public uint ProgType;
        [FieldOffset(4)] public uint InsnCount;
        [FieldOffset(8)] public ulong Insns;
        [FieldOffset(16)] public ulong License;
        [FieldOffset(24)] public uint LogLevel;
        [FieldOffset(28)] public uint LogSize;
        [FieldOffset(32)] public ulong LogBuf;
        [FieldOffset(40)] public uint KernVersion;
        [FieldOffset(44)] public uint ProgFlags;
        [FieldOffset(48)] public fixed byte ProgName[16];
        [FieldOffset(64)] public uint ProgIfIndex;
        [FieldOffset(68)] public uint ExpectedAttachType;
    }

    [StructLayout(LayoutKind.Explicit, Size = 16)]
    internal struct LinkCreateAttr
    {
        [FieldOffset(0)] public uint ProgFd;
        [FieldOffset(4)] public uint TargetFd;
        [FieldOffset(8)] public uint AttachType;
        [FieldOffset(12)] public uint Flags;
    }

    /// <summary>struct bpf_prog_info as far as the core reads it.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 232)]
    internal struct ProgInfo
    {
        [FieldOffset(0)] public uint Type;
        [FieldOffset(4)] public uint Id;
        [FieldOffset(8)] public fixed byte Tag[8];
        [FieldOffset(40)] public ulong LoadTime;
        [FieldOffset(48)] public uint CreatedByUid;
        [FieldOffset(64)] public fixed byte Name[16];
        [FieldOffset(192)] public ulong RunTimeNs;
        [FieldOffset(200)] public ulong RunCnt;
    }

    /// <summary>BPF_ENABLE_STATS: which statistics (BPF_STATS_RUN_TIME = 0).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 4)]
    internal struct EnableStatsAttr
    {
        [FieldOffset(0)] public uint Type;
    }

    /// <summary>struct bpf_link_info: type, id, prog_id.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    internal struct LinkInfo
    {
        [FieldOffset(0)] public uint Type;
        [FieldOffset(4)] public uint Id;
        [FieldOffset(8)] public uint ProgId;
    }

    /// <summary>struct bpf_map_info as far as the core reads it (the kernel copies what fits).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 104)]
    internal struct MapInfo
    {
        [FieldOffset(0)] public uint Type;
        [FieldOffset(4)] public uint Id;
        [FieldOffset(8)] public uint KeySize;
        [FieldOffset(12)] public uint ValueSize;
        [FieldOffset(16)] public uint MaxEntries;
        [FieldOffset(20)] public uint MapFlags;
        [FieldOffset(24)] public fixed byte Name[16];
        [FieldOffset(40)] public uint IfIndex;
        [FieldOffset(64)] public uint BtfId;
    }

    internal const uint BPF_F_RDONLY = 1 << 3;
    internal const uint BPF_F_WRONLY = 1 << 4;
    internal const uint BPF_F_NO_PREALLOC = 1;

    private static readonly long SysBpf = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        _ => -1,
    };

    /// <summary>Calls bpf(2); returns the non-negative result or -errno.</summary>
    internal static long Call<T>(BpfCommand cmd, ref T attr)
        where T : unmanaged
    {
        if (SysBpf < 0)
        {
            throw new BpfEnvironmentException(
                $"bpf(2) is only wired up for x86_64 and arm64; this process runs on {RuntimeInformation.ProcessArchitecture}.",
                BpfEnvironmentProblem.UnsupportedArchitecture);
        }

        fixed (T* p = &attr)
        {
            while (true)
            {
                long rc = Libc.syscall(SysBpf, (long)cmd, (long)p, sizeof(T));
                if (rc >= 0)
                {
                    return rc;
                }

                int errno = Libc.LastErrno;
                if (errno == Errno.EINTR || (errno == Errno.EAGAIN && cmd == BpfCommand.MapCreate))
                {
                    continue;
                }

                return -errno;
            }
        }
    }
}
