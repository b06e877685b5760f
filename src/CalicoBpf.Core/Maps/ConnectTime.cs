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

    /// <summary>Where calico-node mounts its own cgroup v2 hierarchy (the DaemonSet's default).</summary>
    public const string CalicoCgroup = "/run/calico/cgroup";

    /// <summary>
    /// The cgroup Calico attaches to on a node: CALICO_CGROUP_PATH, /run/calico/cgroup, else the first
    /// cgroup2 mount. One rule for every transport, from the node's raw facts.
    /// </summary>
    public static string DefaultCgroup(INodeHost node)
    {
        if (node.ReadEnvironment("CALICO_CGROUP_PATH") is { Length: > 0 } env)
        {
            return env;
        }

        if (node.ListDirectory(CalicoCgroup) is not null)
        {
            return CalicoCgroup;
        }

        return (node.ReadTextFile("/proc/self/mounts") is { } mounts ? Cgroup2Mount(mounts) : null)
            ?? throw new BpfEnvironmentException(
                $"Node {node.Node} has no cgroup v2 hierarchy mounted, so no connect-time programs can be attached. Pass -CgroupPath if it is mounted somewhere unusual.",
                BpfEnvironmentProblem.NoBpfFs, CalicoCgroup);
    }

    /// <summary>Where the cgroup v2 hierarchy is mounted (the first cgroup2 mount of a mounts table), or null.</summary>
    public static string? Cgroup2Mount(string mounts) =>
        mounts.Split('\n').Select(l => l.Split(' ')).Where(f => f.Length >= 3 && f[2] == "cgroup2").Select(f => f[1]).FirstOrDefault();

    /// <summary>This machine's cgroup v2 mount, or null.</summary>
    public static string? Cgroup2Mount() => Cgroup2Mount(File.ReadAllText("/proc/self/mounts"));

    /// <summary>
    /// The programs attached to the connect-time load balancer's cgroup (<paramref name="cgroupPath"/>,
    /// default <see cref="DefaultCgroup"/>), hooks in their order and each hook's programs in the kernel's;
    /// a program is Calico's when its name is, or when a Calico link pin of <paramref name="linkDirectory"/> holds it.
    /// </summary>
    public static IReadOnlyList<ConnectTimeProgram> Programs(INodeDataplane node, string? cgroupPath, string linkDirectory, bool calicoOnly)
    {
        string cgroup = cgroupPath ?? DefaultCgroup(node);
        CgroupProgramListing listing;
        try
        {
            listing = node.ListCgroupPrograms(cgroup, linkDirectory);
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new BpfEnvironmentException(
                $"The cgroup {cgroup} does not exist on node {node.Node}. Pass the cgroup v2 directory calico-node uses (CALICO_CGROUP_PATH, by default {CalicoCgroup}).",
                BpfEnvironmentProblem.NoBpfFs, cgroup, ex);
        }

        var result = new List<ConnectTimeProgram>();
        foreach (CgroupAttachment a in listing.Attached.OrderBy(a => a.Type))
        {
            string? link = listing.LinkPins.FirstOrDefault(p => p.ProgramId == a.ProgramId && IsCalicoName(Path.GetFileName(p.Path)))?.Path;
            bool calico = IsCalicoName(a.Name) || link is not null;
            if (calicoOnly && !calico)
            {
                continue;
            }

            result.Add(new ConnectTimeProgram
            {
                Node = node.Node,
                Cgroup = listing.Cgroup,
                AttachType = a.Type,
                ProgramId = a.ProgramId,
                Name = a.Name,
                Tag = a.Tag,
                Loaded = a.Loaded,
                LinkPath = link,
                IsCalico = calico,
            });
        }

        return result;
    }

    /// <summary>
    /// What calico-bpf connect-time clean would remove on a node: the cali_ctlb_* program arrays in its
    /// pin directory (in <see cref="ProgramArrays"/>' order) and Calico's pins in the link directory.
    /// </summary>
    public static (IReadOnlyList<string> ProgramArrays, IReadOnlyList<string> Links) Plan(INodeDataplane node, string linkDirectory)
    {
        string pins = node.PinDirectory.TrimEnd('/'), links = linkDirectory.TrimEnd('/');
        IReadOnlyList<string> present = node.ListDirectory(pins) ?? Array.Empty<string>();
        var arrays = ProgramArrays.Where(present.Contains).Select(n => pins + "/" + n).ToList();
        var linkPins = (node.ListDirectory(links) ?? Array.Empty<string>()).Where(IsCalicoName).Select(n => links + "/" + n)
            .OrderBy(p => p, StringComparer.Ordinal).ToList();
        return (arrays, linkPins);
    }
}
