using System.Text;

namespace CalicoBpf.Interop;

/// <summary>Cgroup attach types of Calico's connect-time load balancer (enum bpf_attach_type).</summary>
public enum CgroupAttachType : uint
{
    Connect4 = 10,
    Connect6 = 11,
    SendMsg4 = 14,
    SendMsg6 = 15,
    RecvMsg4 = 19,
    RecvMsg6 = 20,
}

/// <summary>What the kernel says about a loaded program (struct bpf_prog_info).</summary>
public sealed record BpfProgramDescriptor(uint Id, uint Type, string Name, string Tag, ulong LoadTimeNanoseconds);

/// <summary>
/// Programs and links through bpf(2): which programs a cgroup runs (BPF_PROG_QUERY), what a
/// program or pinned link is, detaching a link. Loading is only for test fixtures.
/// </summary>
public static unsafe class BpfPrograms
{
    private const uint BpfProgTypeCgroupSockAddr = 18;

    /// <summary>Ids of the programs attached to a cgroup at one hook (effective or not).</summary>
    public static IReadOnlyList<uint> QueryCgroup(string cgroupPath, CgroupAttachType attachType)
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
        var attr = new BpfSyscall.GetByIdAttr { Id = programId };
        long fd = BpfSyscall.Call(BpfCommand.ProgGetFdById, ref attr);
        if (fd < 0)
        {
            throw BpfException.FromErrno((int)-fd, "bpf(BPF_PROG_GET_FD_BY_ID)", "program " + programId);
        }

        using var handle = new SafeFd((int)fd);
        var info = default(BpfSyscall.ProgInfo);
        var infoAttr = new BpfSyscall.InfoAttr { BpfFd = (uint)fd, InfoLen = (uint)sizeof(BpfSyscall.ProgInfo), Info = (ulong)&info };
        long rc = BpfSyscall.Call(BpfCommand.ObjGetInfoByFd, ref infoAttr);
        if (rc < 0)
        {
            throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_GET_INFO_BY_FD)", "program " + programId);
        }

        var name = new ReadOnlySpan<byte>(info.Name, 16);
        int nul = name.IndexOf((byte)0);
        return new BpfProgramDescriptor(info.Id, info.Type, Encoding.ASCII.GetString(nul < 0 ? name : name[..nul]),
            Convert.ToHexString(new ReadOnlySpan<byte>(info.Tag, 8)).ToLowerInvariant(), info.LoadTime);
    }

    /// <summary>The program a pinned link runs. Throws when the pin is not a link.</summary>
    public static (uint LinkId, uint ProgramId) DescribeLink(string pinPath)
    {
        using SafeFd link = OpenPinnedObject(pinPath, "anon_inode:bpf-link");
        var info = default(BpfSyscall.LinkInfo);
        var attr = new BpfSyscall.InfoAttr { BpfFd = (uint)link.Fd, InfoLen = (uint)sizeof(BpfSyscall.LinkInfo), Info = (ulong)&info };
        long rc = BpfSyscall.Call(BpfCommand.ObjGetInfoByFd, ref attr);
        if (rc < 0)
        {
            throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_GET_INFO_BY_FD)", pinPath);
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
    public static void AttachAllowAllToCgroup(string cgroupPath, CgroupAttachType attachType, string programName, string linkPin)
    {
        ulong[] insns = { 0x00000001_000000b7UL, 0x00000000_00000095UL }; // r0 = 1; exit
        byte[] license = Encoding.ASCII.GetBytes("GPL\0");
        long progFd;
        fixed (ulong* i = insns)
        fixed (byte* l = license)
        {
            var attr = new BpfSyscall.ProgLoadAttr
            {
                ProgType = BpfProgTypeCgroupSockAddr,
                InsnCount = (uint)insns.Length,
                Insns = (ulong)i,
                License = (ulong)l,
                ExpectedAttachType = (uint)attachType,
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

        using var prog = new SafeFd((int)progFd);
        using SafeFd cgroup = SafeFd.OpenDirectory(cgroupPath);
        var link = new BpfSyscall.LinkCreateAttr { ProgFd = (uint)prog.Fd, TargetFd = (uint)cgroup.Fd, AttachType = (uint)attachType };
        long linkFd = BpfSyscall.Call(BpfCommand.LinkCreate, ref link);
        if (linkFd < 0)
        {
            throw BpfException.FromErrno((int)-linkFd, "bpf(BPF_LINK_CREATE)", cgroupPath);
        }

        using var linkHandle = new SafeFd((int)linkFd);
        byte[] path = Encoding.UTF8.GetBytes(linkPin + "\0");
        fixed (byte* p = path)
        {
            var pin = new BpfSyscall.ObjAttr { PathName = (ulong)p, BpfFd = (uint)linkHandle.Fd };
            long rc = BpfSyscall.Call(BpfCommand.ObjPin, ref pin);
            if (rc < 0)
            {
                throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_PIN)", linkPin);
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
