using System.Diagnostics;
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

    public static SimulatedNode Create(ClusterScenario.NodeSpec spec, string runId)
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
                spec.Dataplane.Seed(dp, links, node.PolicyDebug);
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

    private void StartHolder()
    {
        // /run gets a private tmpfs first, so that nothing is created on the host's /run; cgroup2 where
        // calico-node's init container mounts it (/run/calico/cgroup). No tracefs, as in a real
        // calico-node container: the fresh sysfs of the node's network namespace has none mounted.
        string script = $"mount --bind '{BpfFs}' /sys/fs/bpf && mount -t tmpfs node-run /run && (umount /sys/kernel/tracing 2>/dev/null || true) && mkdir -p /run/calico/cgroup && (mount -t cgroup2 none /run/calico/cgroup 2>/dev/null || true) && " +
            $"if [ -d '{PolicyDebug}' ]; then mkdir -p /run/calico/bpf/policy && mount --bind '{PolicyDebug}' /run/calico/bpf/policy; fi && echo ready && exec sleep infinity";
        var psi = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "netns", "exec", NetworkNamespace, "unshare", "--mount", "--propagation", "private", "sh", "-c", script })
        {
            psi.ArgumentList.Add(a);
        }

        _holder = Process.Start(psi)!;
        string? line = _holder.StandardOutput.ReadLine();
        if (line != "ready")
        {
            throw new InvalidOperationException($"The namespace holder of node {Spec.Name} did not start: {_holder.StandardError.ReadToEnd().Trim()}");
        }
    }

    /// <summary>The pid whose namespaces commands of this node enter (sleep, after sh exec'd into it).</summary>
    private int HolderPid => _holder?.Id ?? throw new InvalidOperationException("The node has no namespace holder.");

    private static string PeerName(string iface) => ("p" + iface.GetHashCode().ToString("x8"))[..9];

    private static Dictionary<string, int> NetworkNamespace_Links(string netns) =>
        Interop.NetworkNamespace.Run(netns, () => NetLink.ListLinks().Values.ToDictionary(l => l.Name, l => l.IfIndex));

    /// <summary>The command line that runs argv inside the node's network and mount namespaces, as exec into calico-node would.</summary>
    public IReadOnlyList<string> Wrap(IReadOnlyList<string> argv) =>
        new[] { "nsenter", "-t", HolderPid.ToString(System.Globalization.CultureInfo.InvariantCulture), "-m", "-n", "--" }.Concat(argv).ToList();

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
