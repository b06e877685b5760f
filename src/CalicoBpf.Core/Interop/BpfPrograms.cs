namespace CalicoBpf.Interop;

/// <summary>
/// Device attach types of TCX and netkit (enum bpf_attach_type): the TC hooks as bpf links, queried
/// with BPF_PROG_QUERY on the device's ifindex.
/// </summary>
public enum DeviceAttachType : uint
{
    TcxIngress = 46,
    TcxEgress = 47,
    NetkitPrimary = 54,
    NetkitPeer = 55,
}

/// <summary>One program at a device hook, in the kernel's order, with the link that holds it (0: none).</summary>
public sealed record DeviceAttachment(DeviceAttachType AttachType, uint ProgramId, uint LinkId);

/// <summary>What the kernel says about a loaded program (struct bpf_prog_info).</summary>
public sealed record BpfProgramDescriptor(uint Id, uint Type, string Name, string Tag, ulong LoadTimeNanoseconds);

/// <summary>
/// Programs and links through bpf(2): which programs a cgroup or a device's TCX and netkit hooks run
/// (BPF_PROG_QUERY), what a program or pinned link is, detaching a link. Loading is only for test fixtures.
/// </summary>
public static unsafe class BpfPrograms
{
    private const uint BpfProgTypeCgroupSockAddr = 18;
    private const uint BpfProgTypeSchedCls = 3;

    /// <summary>
    /// The programs attached to a device at a TCX or netkit hook, in the kernel's order. A kernel
    /// without TCX (before 6.6) or netkit, or a device that is not a netkit device, has none: the
    /// kernel refuses the query then, as it does for bpftool net show, which lists nothing there.
    /// </summary>
    public static IReadOnlyList<DeviceAttachment> QueryDevice(int ifIndex, DeviceAttachType attachType)
    {
        uint[] ids = new uint[64];
        uint[] links = new uint[64];
        fixed (uint* p = ids)
        fixed (uint* l = links)
        {
            var attr = new BpfSyscall.QueryAttr { TargetFd = (uint)ifIndex, AttachType = (uint)attachType, ProgIds = (ulong)p, LinkIds = (ulong)l, ProgCount = (uint)ids.Length };
            long rc = BpfSyscall.Call(BpfCommand.ProgQuery, ref attr);
            if (rc < 0)
            {
                int errno = (int)-rc;
                if (errno is Errno.EINVAL or Errno.ENODEV or Errno.EOPNOTSUPP or Errno.ENOENT)
                {
                    return Array.Empty<DeviceAttachment>();
                }

                throw BpfException.FromErrno(errno, $"bpf(BPF_PROG_QUERY {attachType})", "ifindex " + ifIndex);
            }

            return Enumerable.Range(0, (int)Math.Min(attr.ProgCount, (uint)ids.Length)).Select(i => new DeviceAttachment(attachType, ids[i], links[i])).ToArray();
        }
    }

    /// <summary>Ids of the programs attached to a cgroup at one hook (effective or not).</summary>
    public static IReadOnlyList<uint> QueryCgroup(string cgroupPath, uint attachType)
    {
        using SafeFd cgroup = SafeFd.OpenDirectory(cgroupPath);
        uint[] ids = new uint[64];
        fixed (uint* p = ids)
        {
            var attr = new BpfSyscall.QueryAttr { TargetFd = (uint)cgroup.Fd, AttachType = (uint)attachType, ProgIds = (ulong)p, ProgCount = (uint)ids.Length };
            long rc = BpfSyscall.Call(BpfCommand.ProgQuery, ref attr);
            if (rc < 0)
            {
                throw BpfException.FromErrno((int)-rc, $"bpf(BPF_PROG_QUERY {attachType})", cgroupPath);
            }

            return ids.Take((int)attr.ProgCount).ToArray();
        }
    }

    public static BpfProgramDescriptor Describe(uint programId)
    {
        BpfSyscall.ProgInfo info = Info(programId) ?? throw BpfException.FromErrno(2, "bpf(BPF_PROG_GET_FD_BY_ID)", "program " + programId);
        var name = new ReadOnlySpan<byte>(info.Name, 16);
        int nul = name.IndexOf((byte)0);
        return new BpfProgramDescriptor(info.Id, info.Type, Encoding.ASCII.GetString(nul < 0 ? name : name[..nul]),
            Convert.ToHexString(new ReadOnlySpan<byte>(info.Tag, 8)).ToLowerInvariant(), info.LoadTime);
    }

    /// <summary>A program's bpf_prog_info by id; null when no program has that id (any more).</summary>
    private static BpfSyscall.ProgInfo? Info(uint programId)
    {
        var attr = new BpfSyscall.GetByIdAttr { Id = programId };
        long fd = BpfSyscall.Call(BpfCommand.ProgGetFdById, ref attr);
        if (fd < 0)
        {
            return (int)-fd == 2 ? null : throw BpfException.FromErrno((int)-fd, "bpf(BPF_PROG_GET_FD_BY_ID)", "program " + programId);
        }

        using var handle = new SafeFd((int)fd);
        var info = default(BpfSyscall.ProgInfo);
        var infoAttr = new BpfSyscall.InfoAttr { BpfFd = (uint)fd, InfoLen = (uint)sizeof(BpfSyscall.ProgInfo), Info = (ulong)&info };
        long rc = BpfSyscall.Call(BpfCommand.ObjGetInfoByFd, ref infoAttr);
        if (rc < 0)
        {
            throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_GET_INFO_BY_FD)", "program " + programId);
        }

        return info;
    }

    /// <summary>
    /// How often a program ran and for how long in all (bpf_prog_info run_cnt and run_time_ns), counted
    /// only while the kernel's run-time statistics are on; null when the program is gone.
    /// </summary>
    public static (ulong RunTimeNanoseconds, ulong RunCount)? RunStatistics(uint programId) =>
        Info(programId) is { } info ? (info.RunTimeNs, info.RunCnt) : null;

    /// <summary>
    /// Turns the kernel's run-time statistics on (BPF_ENABLE_STATS, BPF_STATS_RUN_TIME) for as long as
    /// the handle is open: closing it, or the process ending however it ends, turns them back to what they
    /// were (the kernel counts the holders; kernel.bpf_stats_enabled, a setting of its own, is not changed).
    /// </summary>
    public static IDisposable EnableRunTimeStatistics()
    {
        var attr = new BpfSyscall.EnableStatsAttr { Type = 0 };
        long fd = BpfSyscall.Call(BpfCommand.EnableStats, ref attr);
        if (fd < 0)
        {
            throw BpfException.FromErrno((int)-fd, "bpf(BPF_ENABLE_STATS)", "run-time statistics");
        }

        return new SafeFd((int)fd);
    }

    /// <summary>The program a pinned link runs. Throws when the pin is not a link.</summary>
    public static (uint LinkId, uint ProgramId) DescribeLink(string pinPath)
    {
        using SafeFd link = OpenPinnedObject(pinPath, "anon_inode:bpf-link");
        return LinkIds(link, pinPath);
    }

    private static (uint LinkId, uint ProgramId) LinkIds(SafeFd link, string name)
    {
        var info = default(BpfSyscall.LinkInfo);
        var attr = new BpfSyscall.InfoAttr { BpfFd = (uint)link.Fd, InfoLen = (uint)sizeof(BpfSyscall.LinkInfo), Info = (ulong)&info };
        long rc = BpfSyscall.Call(BpfCommand.ObjGetInfoByFd, ref attr);
        if (rc < 0)
        {
            throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_GET_INFO_BY_FD)", name);
        }

        return (info.Id, info.ProgId);
    }

    /// <summary>Detaches a pinned link from its hook (BPF_LINK_DETACH); the pin stays until removed.</summary>
    public static void DetachLink(string pinPath)
    {
        using SafeFd link = OpenPinnedObject(pinPath, "anon_inode:bpf-link");
        uint fd = (uint)link.Fd;
        long rc = BpfSyscall.Call(BpfCommand.LinkDetach, ref fd);
        if (rc < 0)
        {
            throw BpfException.FromErrno((int)-rc, "bpf(BPF_LINK_DETACH)", pinPath);
        }
    }

    /// <summary>
    /// Test fixture: loads a two-instruction CGROUP_SOCK_ADDR program (allow everything), links it
    /// to a cgroup at <paramref name="attachType"/>, and pins the link at <paramref name="linkPin"/>.
    /// </summary>
    public static void AttachAllowAllToCgroup(string cgroupPath, uint attachType, string programName, string linkPin)
    {
        using SafeFd prog = LoadReturning(BpfProgTypeCgroupSockAddr, (uint)attachType, 1, programName);
        using SafeFd cgroup = SafeFd.OpenDirectory(cgroupPath);
        using SafeFd link = CreateLink(prog, (uint)cgroup.Fd, (uint)attachType, cgroupPath);
        Pin(link, linkPin);
    }

    /// <summary>
    /// Test fixture: loads a two-instruction SCHED_CLS program that returns <paramref name="verdict"/>
    /// (TCX_PASS 0, TCX_DROP 2, TCX_NEXT -1), links it to the device <paramref name="ifIndex"/> of the
    /// calling thread's network namespace at a TCX or netkit hook, as Felix does, and pins the link at
    /// <paramref name="linkPin"/> (unpinning it detaches the program). Returns the program and link ids.
    /// </summary>
    public static (uint ProgramId, uint LinkId) AttachToDevice(int ifIndex, DeviceAttachType attachType, string programName, string linkPin, int verdict = 0)
    {
        using SafeFd prog = LoadReturning(BpfProgTypeSchedCls, (uint)attachType, verdict, programName);
        using SafeFd link = CreateLink(prog, (uint)ifIndex, (uint)attachType, "ifindex " + ifIndex);
        Pin(link, linkPin);
        (uint linkId, uint progId) = LinkIds(link, linkPin);
        return (progId, linkId);
    }

    /// <summary>
    /// Test fixture: loads the same SCHED_CLS program and pins it at <paramref name="pinPath"/> (for
    /// tc filter ... bpf da object-pinned). Returns its id.
    /// </summary>
    public static uint PinTcProgram(string programName, string pinPath, int verdict = 0)
    {
        using SafeFd prog = LoadReturning(BpfProgTypeSchedCls, 0, verdict, programName);
        Pin(prog, pinPath);
        var info = default(BpfSyscall.ProgInfo);
        var attr = new BpfSyscall.InfoAttr { BpfFd = (uint)prog.Fd, InfoLen = (uint)sizeof(BpfSyscall.ProgInfo), Info = (ulong)&info };
        long rc = BpfSyscall.Call(BpfCommand.ObjGetInfoByFd, ref attr);
        if (rc < 0)
        {
            throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_GET_INFO_BY_FD)", pinPath);
        }

        return info.Id;
    }

    /// <summary>Loads "r0 = <paramref name="verdict"/>; exit" as a program of the given type.</summary>
    private static SafeFd LoadReturning(uint progType, uint expectedAttachType, int verdict, string programName)
    {
        ulong[] insns = { 0x000000b7UL | ((ulong)(uint)verdict << 32), 0x00000000_00000095UL }; // r0 = verdict; exit
        byte[] license = Encoding.ASCII.GetBytes("GPL\0");
        long progFd;
        fixed (ulong* i = insns)
        fixed (byte* l = license)
        {
            var attr = new BpfSyscall.ProgLoadAttr
            {
                ProgType = progType,
                InsnCount = (uint)insns.Length,
                Insns = (ulong)i,
                License = (ulong)l,
                ExpectedAttachType = expectedAttachType,
            };
            byte[] name = Encoding.ASCII.GetBytes(programName);
            for (int n = 0; n < Math.Min(name.Length, 15); n++)
            {
                attr.ProgName[n] = name[n];
            }

            progFd = BpfSyscall.Call(BpfCommand.ProgLoad, ref attr);
        }

        if (progFd < 0)
        {
            throw BpfException.FromErrno((int)-progFd, "bpf(BPF_PROG_LOAD)", programName);
        }

        return new SafeFd((int)progFd);
    }

    private static SafeFd CreateLink(SafeFd prog, uint target, uint attachType, string targetName)
    {
        var link = new BpfSyscall.LinkCreateAttr { ProgFd = (uint)prog.Fd, TargetFd = target, AttachType = attachType };
        long linkFd = BpfSyscall.Call(BpfCommand.LinkCreate, ref link);
        if (linkFd < 0)
        {
            throw BpfException.FromErrno((int)-linkFd, "bpf(BPF_LINK_CREATE)", targetName);
        }

        return new SafeFd((int)linkFd);
    }

    private static void Pin(SafeFd handle, string pinPath)
    {
        byte[] path = Encoding.UTF8.GetBytes(pinPath + "\0");
        fixed (byte* p = path)
        {
            var pin = new BpfSyscall.ObjAttr { PathName = (ulong)p, BpfFd = (uint)handle.Fd };
            long rc = BpfSyscall.Call(BpfCommand.ObjPin, ref pin);
            if (rc < 0)
            {
                throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_PIN)", pinPath);
            }
        }
    }

    private static SafeFd OpenPinnedObject(string pinPath, string expectedKind)
    {
        byte[] path = Encoding.UTF8.GetBytes(pinPath + "\0");
        fixed (byte* p = path)
        {
            var attr = new BpfSyscall.ObjAttr { PathName = (ulong)p };
            long fd = BpfSyscall.Call(BpfCommand.ObjGet, ref attr);
            if (fd < 0)
            {
                throw BpfException.FromErrno((int)-fd, "bpf(BPF_OBJ_GET)", pinPath);
            }

            var handle = new SafeFd((int)fd);
            string kind = new FileInfo($"/proc/self/fd/{fd}").LinkTarget ?? string.Empty;
            if (kind != expectedKind)
            {
                handle.Dispose();
                throw new BpfInvalidArgumentException($"{pinPath} is a pinned {kind.Replace("anon_inode:", string.Empty)}, not a {expectedKind.Replace("anon_inode:", string.Empty)}.", Errno.EINVAL, pinPath);
            }

            return handle;
        }
    }
}

/// <summary>A file descriptor closed on dispose.</summary>
internal sealed class SafeFd : IDisposable
{
    private int _fd;

    public SafeFd(int fd) => _fd = fd;

    public int Fd => _fd;

    public static SafeFd OpenDirectory(string path)
    {
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_DIRECTORY);
        if (fd < 0)
        {
            throw BpfException.FromErrno(Libc.LastErrno, "open", path);
        }

        return new SafeFd(fd);
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            Libc.close(fd);
        }
    }
}
