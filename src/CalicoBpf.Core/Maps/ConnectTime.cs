using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>
/// Calico's connect-time load balancer (reference section 4.12): cgroup v2 programs on the cgroup
/// root (/run/calico/cgroup, or CALICO_CGROUP_PATH), held by links pinned in /sys/fs/bpf/ctlb, and
/// the three program arrays cali_ctlb_conn/send/recv in the globals directory.
/// </summary>
public static class ConnectTime
{
    public const string DefaultLinkDirectory = "/sys/fs/bpf/ctlb";
    public static readonly string[] ProgramArrays = { "cali_ctlb_conn", "cali_ctlb_send", "cali_ctlb_recv" };

    public static bool IsCalicoName(string name) =>
        name.StartsWith("cali_", StringComparison.Ordinal) || name.StartsWith("calico_", StringComparison.Ordinal);

    /// <summary>The cgroup Calico attaches to: CALICO_CGROUP_PATH, /run/calico/cgroup, else the first cgroup2 mount.</summary>
    public static string DefaultCgroup()
    {
        string? env = Environment.GetEnvironmentVariable("CALICO_CGROUP_PATH");
        if (!string.IsNullOrEmpty(env))
        {
            return env;
        }

        if (Directory.Exists("/run/calico/cgroup"))
        {
            return "/run/calico/cgroup";
        }

        return Cgroup2Mount() ?? throw new BpfEnvironmentException("No cgroup v2 hierarchy is mounted, so no connect-time programs can be attached. Pass -CgroupPath if it is mounted somewhere unusual.",
            BpfEnvironmentProblem.NoBpfFs, "/run/calico/cgroup");
    }

    /// <summary>Where the cgroup v2 hierarchy is mounted (the first cgroup2 mount), or null.</summary>
    public static string? Cgroup2Mount() =>
        File.ReadLines("/proc/self/mounts").Select(l => l.Split(' ')).Where(f => f.Length >= 3 && f[2] == "cgroup2").Select(f => f[1]).FirstOrDefault();

    /// <summary>Calico's link pins in the link directory (calico_* and cali_*), by program id.</summary>
    public static Dictionary<uint, string> LinkPins(string linkDirectory)
    {
        var result = new Dictionary<uint, string>();
        if (!Directory.Exists(linkDirectory))
        {
            return result;
        }

        foreach (string path in Directory.EnumerateFileSystemEntries(linkDirectory))
        {
            if (!IsCalicoName(Path.GetFileName(path)))
            {
                continue;
            }

            try
            {
                result[BpfPrograms.DescribeLink(path).ProgramId] = path;
            }
            catch (BpfException)
            {
                // Not a link (or gone): calico-bpf connect-time clean only detaches links.
            }
        }

        return result;
    }

    public static IEnumerable<ConnectTimeProgram> List(string node, string cgroupPath, string linkDirectory, bool calicoOnly)
    {
        Dictionary<uint, string> links = LinkPins(linkDirectory);
        ulong bootNow = KernelInfo.BootTimeNanoseconds();
        DateTime utcNow = DateTime.UtcNow;
        foreach (CgroupAttachType type in Enum.GetValues<CgroupAttachType>())
        {
            foreach (uint id in BpfPrograms.QueryCgroup(cgroupPath, type))
            {
                BpfProgramDescriptor p;
                try
                {
                    p = BpfPrograms.Describe(id);
                }
                catch (BpfObjectNotFoundException)
                {
                    continue; // detached meanwhile
                }

                string? link = links.GetValueOrDefault(id);
                bool calico = IsCalicoName(p.Name) || link is not null;
                if (calicoOnly && !calico)
                {
                    continue;
                }

                yield return new ConnectTimeProgram
                {
                    Node = node,
                    Cgroup = cgroupPath,
                    AttachType = type,
                    ProgramId = id,
                    Name = p.Name,
                    Tag = p.Tag,
                    Loaded = p.LoadTimeNanoseconds > 0 && p.LoadTimeNanoseconds <= bootNow
                        ? WholeSeconds(utcNow - TimeSpan.FromTicks((long)((bootNow - p.LoadTimeNanoseconds) / 100)))
                        : null,
                    LinkPath = link,
                    IsCalico = calico,
                };
            }
        }
    }

    /// <summary>
    /// Load times to the second, as bpftool's loaded_at gives them: the boot-clock conversion jitters
    /// below that, and a remote node (read through bpftool) must give the same object as a local one.
    /// </summary>
    public static DateTime WholeSeconds(DateTime utc) => new(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);

    /// <summary>A hook from bpftool's name for it: the short one of older bpftool, or libbpf's (bpftool 7+).</summary>
    public static CgroupAttachType? ParseAttachType(string bpftoolName) => bpftoolName switch
    {
        "connect4" or "cgroup_inet4_connect" => CgroupAttachType.Connect4,
        "connect6" or "cgroup_inet6_connect" => CgroupAttachType.Connect6,
        "sendmsg4" or "cgroup_udp4_sendmsg" => CgroupAttachType.SendMsg4,
        "sendmsg6" or "cgroup_udp6_sendmsg" => CgroupAttachType.SendMsg6,
        "recvmsg4" or "cgroup_udp4_recvmsg" => CgroupAttachType.RecvMsg4,
        "recvmsg6" or "cgroup_udp6_recvmsg" => CgroupAttachType.RecvMsg6,
        _ => null,
    };

    /// <summary>What connect-time clean would remove: the program arrays present and Calico's link pins.</summary>
    public static (IReadOnlyList<string> ProgramArrays, IReadOnlyList<string> Links) Plan(string pinDirectory, string linkDirectory)
    {
        var arrays = ProgramArrays.Select(n => Path.Combine(pinDirectory, n)).Where(File.Exists).ToList();
        var links = Directory.Exists(linkDirectory)
            ? Directory.EnumerateFileSystemEntries(linkDirectory).Where(p => IsCalicoName(Path.GetFileName(p))).OrderBy(p => p, StringComparer.Ordinal).ToList()
            : new List<string>();
        return (arrays, links);
    }

    /// <summary>Empties (index 0) and unpins one of the cali_ctlb_* program arrays.</summary>
    public static void RemoveProgramArray(string path)
    {
        using (BpfMap map = BpfMap.OpenPinned(path, writable: true))
        {
            map.Delete(new byte[map.Descriptor.KeySize]);
        }

        File.Delete(path);
    }

    /// <summary>Detaches a link pin (when it is a link) and removes the pin.</summary>
    public static void RemoveLink(string path)
    {
        try
        {
            BpfPrograms.DetachLink(path);
        }
        catch (BpfInvalidArgumentException)
        {
            // A Calico pin that is not a link: removing the pin is all calico-bpf does with it.
        }

        File.Delete(path);
    }
}
