using System.Diagnostics;
using System.Globalization;
using CalicoBpf.Interop;
using CalicoBpf.Simulation;

namespace CalicoBpf.TestCluster;

/// <summary>
/// One node, real below the API: a network namespace with the node's interfaces, a private bpffs
/// holding real Calico maps, and commands run inside both, as exec into calico-node would run them.
/// </summary>
public sealed class SimulatedNode : IDisposable
{
    private SimulatedNode(ClusterScenario.NodeSpec spec, string netns, string root)
    {
        Spec = spec;
        NetworkNamespace = netns;
        Root = root;
    }

    public ClusterScenario.NodeSpec Spec { get; }

    /// <summary>
    /// A process that holds the node's mount namespace (its bpffs at /sys/fs/bpf, a private /run)
    /// inside its network namespace; commands enter both with nsenter, one spawn per exec.
    /// </summary>
    private Process? _holder;
    public string NetworkNamespace { get; }
    public string Root { get; }
    public string BpfFs => Path.Combine(Root, "bpffs");
    public string PolicyDebug => Path.Combine(Root, "policy");

    /// <param name="programServices">Writes the node's NAT as Felix would (scenario programServices), before its own dataplane.services.</param>
    /// <param name="attachPrograms">Attaches Calico's program to the node's workload interfaces (scenario attachPrograms).</param>
    public static SimulatedNode Create(ClusterScenario.NodeSpec spec, string runId, Action<SimulatedDataplane>? programServices = null, bool attachPrograms = false)
    {
        string netns = $"cbk-{runId}-{spec.Name}";
        if (netns.Length > 60)
        {
            netns = netns[..60];
        }

        string root = Path.Combine(Path.GetTempPath(), netns);
        var node = new SimulatedNode(spec, netns, root);
        try
        {
            Run("ip", "netns", "add", netns);
            Run("ip", "-n", netns, "link", "set", "lo", "up");
            foreach (string iface in spec.Interfaces)
            {
                Run("ip", "-n", netns, "link", "add", iface, "type", "veth", "peer", "name", PeerName(iface));
                Run("ip", "-n", netns, "link", "set", iface, "up");
                Run("ip", "netns", "exec", netns, "tc", "qdisc", "add", "dev", iface, "clsact");
            }

            Directory.CreateDirectory(node.BpfFs);
            KernelInfo.MountBpfFs(node.BpfFs);
            if (spec.CalicoNode && !spec.BrokenBpf)
            {
                var links = NetworkNamespace_Links(netns);
                using SimulatedDataplane dp = SimulatedDataplane.Claim(Path.Combine(node.BpfFs, "tc", "globals"));
                spec.Dataplane.Seed(dp, links, node.PolicyDebug, programServices);
                if (attachPrograms)
                {
                    AttachWorkloadPrograms(node, spec);
                }
            }

            node.StartHolder();
            return node;
        }
        catch
        {
            node.Dispose();
            throw;
        }
    }

    /// <summary>The calico-node image the node runs: its release's binaries, and nothing else, under its root.</summary>
    public CalicoNodeImage Image => CalicoNodeImage.For(Spec.Dataplane.Release ?? CalicoRelease.Parse(ClusterScenario.DefaultCalicoVersion));

    /// <summary>
    /// Starts the node's calico-node container: a mount and PID namespace inside the node's network
    /// namespace, whose root is an empty tmpfs holding only the image's kept binaries (bound in from
    /// this machine, with the libraries they load), a fresh /proc and /sys, the volumes the DaemonSet
    /// mounts (bpffs at /sys/fs/bpf, /var/run/calico with the policy debug files, the cgroup v2 mount at
    /// /run/calico/cgroup, the host's /dev as a privileged container has it) and nothing it does not:
    /// no tracefs, no mount, no nsenter. Its PID 1 sleeps; commands enter with nsenter.
    /// </summary>
    private void StartHolder()
    {
        string rootfs = Path.Combine(Root, "rootfs");
        string stage = Path.Combine(Root, "image");
        Directory.CreateDirectory(rootfs);
        Directory.CreateDirectory(stage);
        string binaries = Path.Combine(stage, "binaries");
        var kept = Image.Binaries(stage).Where(b => !Spec.ImageWithout.Contains(Path.GetFileName(b.Target))).ToList();
        if (Spec.BpftoolStallSeconds > 0 && kept.FindIndex(b => b.Target == "/usr/bin/bpftool") is int at and >= 0)
        {
            // Fault knob: a bpftool that hangs before it starts.
            string stalled = Path.Combine(stage, "bpftool-stalled");
            File.WriteAllText(stalled, $"#!/usr/bin/sh\nsleep {Spec.BpftoolStallSeconds}\nexec /usr/libexec/bpftool-stalled \"$@\"\n");
            CalicoNodeImage.MakeExecutable(stalled);
            kept.Add((kept[at].Source, "/usr/libexec/bpftool-stalled"));
            kept[at] = (stalled, "/usr/bin/bpftool");
        }

        File.WriteAllLines(binaries, kept.Select(b => b.Source + " " + b.Target));
        string etc = Path.Combine(stage, "etc");
        Directory.CreateDirectory(etc);
        File.WriteAllText(Path.Combine(etc, "hostname"), Spec.Name + "\n");
        File.WriteAllText(Path.Combine(etc, "passwd"), "root:x:0:0:root:/root:/bin/bash\n");
        File.WriteAllText(Path.Combine(etc, "os-release"), "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nVERSION_ID=\"9.6\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.6 (Plow)\"\n");
        string script = "set -e; R='" + rootfs + "'; mount -t tmpfs -o mode=0755 calico-node \"$R\"; cd \"$R\"; " +
            "mkdir -p usr/bin usr/sbin usr/local/bin usr/local/sbin usr/lib usr/lib64 usr/libexec etc proc sys dev run tmp root var/log; " +
            "ln -s usr/bin bin; ln -s usr/sbin sbin; ln -s usr/lib lib; ln -s usr/lib64 lib64; ln -s ../run var/run; " +
            // Libraries stay the machine's (the binaries are): a library is not a tool the module could call.
            "mount --rbind /usr/lib usr/lib; mount --bind /usr/lib64 usr/lib64; " +
            "while read -r src dst; do mkdir -p \"$R${dst%/*}\"; : > \"$R$dst\"; mount --bind \"$src\" \"$R$dst\"; done < '" + binaries + "'; " +
            "cp '" + etc + "'/* etc/; " +
            "mount -t proc proc proc; mount -t sysfs sysfs sys; mount --bind '" + BpfFs + "' sys/fs/bpf; mount --rbind /dev dev; " +
            "mkdir -p run/calico/cgroup; mount -t cgroup2 none run/calico/cgroup 2>/dev/null || true; " +
            "if [ -d '" + PolicyDebug + "' ]; then mkdir -p run/calico/bpf/policy; mount --bind '" + PolicyDebug + "' run/calico/bpf/policy; fi; " +
            "echo ready; exec chroot \"$R\" /usr/bin/sleep infinity";
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "netns", "exec", NetworkNamespace, "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "sh", "-c", script })
        {
            psi.ArgumentList.Add(a);
        }

        _holder = Process.Start(psi)!;
        string? line = _holder.StandardOutput.ReadLine();
        if (line != "ready")
        {
            throw new InvalidOperationException($"The calico-node container of node {Spec.Name} did not start: {_holder.StandardError.ReadToEnd().Trim()}");
        }

        // unshare forked the container's PID 1 (sh, then chroot, then sleep: one pid): its namespaces are the container's.
        string children = File.ReadAllText($"/proc/{_holder.Id}/task/{_holder.Id}/children").Trim();
        _init = int.Parse(children.Split(' ')[0], CultureInfo.InvariantCulture);
    }

    /// <summary>The container's PID 1 as this machine numbers it: commands enter its namespaces and root.</summary>
    private int _init;

    private int HolderPid => _init > 0 ? _init : throw new InvalidOperationException("The node has no calico-node container.");

    /// <summary>The container's root, seen from this machine.</summary>
    public string ContainerRoot => $"/proc/{HolderPid}/root";

    /// <summary>
    /// Finds a command as the container runtime does before it starts one (runc's exec.LookPath in
    /// the container, on its PATH): null when there is no such executable, with the runtime's reason.
    /// </summary>
    public string? MissingExecutable(string file)
    {
        if (file.Contains('/'))
        {
            return CalicoNodeImage.IsExecutable(ContainerRoot + (file.StartsWith('/') ? file : "/" + file)) ? null : $"exec: \"{file}\": stat {file}: no such file or directory";
        }

        return CalicoNodeImage.ContainerPath.Split(':').Any(d => CalicoNodeImage.IsExecutable(ContainerRoot + d + "/" + file)) ? null : $"exec: \"{file}\": executable file not found in $PATH";
    }

    /// <summary>
    /// Processes running in the container now, its PID 1 aside (zombies do not run): a command the
    /// module started and left behind shows here.
    /// </summary>
    public IReadOnlyList<string> Processes()
    {
        // ns/pid reads "pid:[INODE]": equal for every process of one namespace.
        static string? Namespace(string proc) => new FileInfo(Path.Combine(proc, "ns", "pid")).LinkTarget;
        string ns = Namespace($"/proc/{HolderPid}") ?? throw new InvalidOperationException("The container has no PID namespace.");
        var found = new List<string>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            string name = Path.GetFileName(dir);
            if (!int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid == HolderPid)
            {
                continue;
            }

            try
            {
                if (Namespace(dir) != ns)
                {
                    continue;
                }

                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                if (stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z'))
                {
                    continue;
                }

                found.Add(File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ').Trim());
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Ended while it was looked at.
            }
        }

        return found;
    }

    private static string PeerName(string iface) => ("p" + iface.GetHashCode().ToString("x8"))[..9];

    private static Dictionary<string, int> NetworkNamespace_Links(string netns) =>
        Interop.NetworkNamespace.Run(netns, () => NetLink.ListLinks().Values.ToDictionary(l => l.Name, l => l.IfIndex));

    /// <summary>The command line that runs argv inside the node's calico-node container (its namespaces and root), as an exec would.</summary>
    public IReadOnlyList<string> Wrap(IReadOnlyList<string> argv) =>
        new[] { "nsenter", "-t", HolderPid.ToString(CultureInfo.InvariantCulture), "-m", "-n", "-p", "-r", "-w", "--" }.Concat(argv).ToList();

    /// <summary>The environment of an exec into calico-node: the image's (a PATH, the host name), not this process's.</summary>
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["PATH"] = CalicoNodeImage.ContainerPath,
        ["HOSTNAME"] = Spec.Name,
        ["HOME"] = "/root",
        ["SVDIR"] = "/etc/service/enabled",
        ["NODENAME"] = Spec.Name,
    };

    /// <summary>
    /// Felix's programs on the node's workload interfaces (names that start with cali, Felix's
    /// default interfacePrefix), attached as bpfAttachType TC does (felix/bpf/tc/attach.go
    /// AttachProgram: cali_tc_preamble as a clsact filter at ingress and egress), except where the
    /// scenario says Felix did not attach (unattached). The program only passes packets; each pin is
    /// removed once its filter holds the program.
    /// </summary>
    private static void AttachWorkloadPrograms(SimulatedNode node, ClusterScenario.NodeSpec spec)
    {
        foreach (string iface in spec.Interfaces.Where(i => i.StartsWith("cali", StringComparison.Ordinal) && !spec.Unattached.Contains(i)))
        {
            foreach (string hook in new[] { "ingress", "egress" })
            {
                string pin = Path.Combine(node.BpfFs, $"calicobpf-test-{iface}-{hook}");
                BpfPrograms.PinTcProgram("cali_tc_preamble", pin);
                try
                {
                    Run("ip", "netns", "exec", node.NetworkNamespace, "tc", "filter", "add", "dev", iface, hook, "bpf", "da", "object-pinned", pin);
                }
                finally
                {
                    File.Delete(pin);
                }
            }
        }
    }

    private static void Run(params string[] argv)
    {
        var psi = new ProcessStartInfo(argv[0]) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in argv.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{string.Join(' ', argv)} failed: {err.Trim()}");
        }
    }

    public void Dispose()
    {
        if (_holder is { HasExited: false })
        {
            _holder.Kill(entireProcessTree: true);
            _holder.WaitForExit();
        }

        _holder?.Dispose();
        try
        {
            if (Directory.Exists(BpfFs))
            {
                try
                {
                    KernelInfo.Unmount(BpfFs);
                }
                catch (BpfException)
                {
                }
            }

            if (Directory.Exists(Root))
            {
                Directory.Delete(Root, recursive: true);
            }
        }
        finally
        {
            try
            {
                Run("ip", "netns", "del", NetworkNamespace);
            }
            catch (InvalidOperationException)
            {
            }
        }
    }
}
