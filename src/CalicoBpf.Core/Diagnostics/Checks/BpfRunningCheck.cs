using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>2. eBPF actually running, per node: the calico-node log, Calico's maps, the kernel minimum for the node's distribution.</summary>
public sealed class BpfRunningCheck : Check
{
    public override string Id => "bpf-running";

    public override string Title => "eBPF dataplane running on the node";

    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        if (context.Local is { } local)
        {
            return new[] { LocalResult(local) };
        }

        return PerNode(context, node =>
        {
            context.Require("read pod logs");
            IReadOnlyList<FelixLogLine> log = context.Log(node);
            FelixLogLine? fallback = FelixLog.Last(log, FelixLog.NotSupported);
            FelixLogLine? verifier = FelixLog.Last(log, FelixLog.VerifierRejected);
            bool? running = context.BpfRunning(node);
            (Version min, int minRelease, string distro) = KernelRequirement.Gate(node.KernelVersion, node.OsImage);
            string kernel = $"kernel {node.KernelVersion} ({distro}; Felix needs at least {min}{(minRelease > 0 ? "-" + minRelease : string.Empty)}, current releases 5.10)";
            if (running == false && fallback is not null)
            {
                return Result(CheckStatus.Fail, $"Felix fell back to iptables: {fallback.Field("error") ?? "the kernel does not support the eBPF dataplane"}.", node.Node, Quote(fallback),
                    "Upgrade the node's kernel (5.10 or newer), or take the node out of the eBPF cluster.");
            }

            if (verifier is not null)
            {
                return Result(CheckStatus.Fail, "The kernel's BPF verifier rejects Calico's programs: the node is not ready.", node.Node, Quote(verifier), "Upgrade the node's kernel to 5.10 or newer.");
            }

            // Counting the pinned maps needs exec; without the right the log and the kernel still tell.
            string pins = context.Denied.Contains("exec into calico-node") ? "maps not counted: may not exec" : context.Dataplane(node).ListMaps().Count + " Calico maps are pinned";
            if (!KernelRequirement.PassesGate(node.KernelVersion, node.OsImage))
            {
                return Result(CheckStatus.Fail, $"The {kernel} is below Felix's minimum: Felix disables eBPF mode.", node.Node, kernel, "Upgrade the node's kernel (5.10 or newer).");
            }

            if (running != true)
            {
                return Result(CheckStatus.Warning, $"The calico-node log does not show eBPF starting (the line may have rotated away); {pins}.",
                    node.Node, $"no \"{FelixLog.Started}\" in the last 5000 lines", "kubectl logs -n " + node.Namespace + " " + node.Pod + " -c calico-node | Select-String BPF");
            }

            if (KernelRequirement.TryParse(node.KernelVersion, out Version v, out _) && v < KernelRequirement.Effective)
            {
                return Result(CheckStatus.Warning, $"eBPF runs, but the {kernel} is older than 5.10, the minimum of current Calico releases.", node.Node, kernel, "Upgrade the node's kernel to 5.10 or newer.");
            }

            return Result(CheckStatus.Pass, $"eBPF dataplane running: the log says so and {pins}; {kernel}.", node.Node, Quote(FelixLog.Last(log, FelixLog.Started)!));
        });
    }

    private CheckResult LocalResult(Transport.INodeDataplane local)
    {
        string kernel = Interop.KernelInfo.Release;
        int maps;
        try
        {
            maps = local.ListMaps().Count;
        }
        catch (Interop.BpfEnvironmentException ex) when (ex.Problem is Interop.BpfEnvironmentProblem.NoBpfFs or Interop.BpfEnvironmentProblem.NoCalicoMaps)
        {
            return Result(CheckStatus.Fail, "eBPF is not running on this machine: " + ex.Message, local.Node, $"kernel {kernel}",
                "Read the calico-node log for why Felix is not in eBPF mode, and Test-CalicoEbpf -Check bpf-requested on the cluster.");
        }

        return KernelRequirement.TryParse(kernel, out Version v, out _) && v < KernelRequirement.Effective
            ? Result(CheckStatus.Warning, $"{maps} Calico maps are pinned, but kernel {kernel} is older than 5.10, the minimum of current Calico releases.", local.Node, $"kernel {kernel}")
            : Result(CheckStatus.Pass, $"{maps} Calico maps are pinned in {local.PinDirectory}; kernel {kernel}.", local.Node, $"kernel {kernel}");
    }
}
