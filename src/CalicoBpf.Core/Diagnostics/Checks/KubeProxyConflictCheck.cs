using CalicoBpf.Cluster;

namespace CalicoBpf.Diagnostics;

/// <summary>4. kube-proxy fighting Felix: kube-proxy running while eBPF is on and Felix cleans up kube-proxy's rules.</summary>
public sealed class KubeProxyConflictCheck : Check
{
    public override string Id => "kube-proxy-conflict";

    public override string Title => "kube-proxy and Felix do not fight over rules";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        if (ServiceImplementationCheck.KubeProxyDisabled(context.KubeProxy, out string kp))
        {
            return new[] { Result(CheckStatus.Pass, "kube-proxy is not running.", evidence: kp) };
        }

        // Who still needs kube-proxy is asked once per run, and only when a node fails.
        var dependents = new Lazy<(IReadOnlyList<string> Nodes, bool Partial)>(() => Dependents(context));
        return PerNode(context, node =>
        {
            if (!context.Denied.Contains("read pod logs") && context.BpfRunning(node) == false)
            {
                return Result(CheckStatus.Pass, "eBPF is not running here (Felix fell back, see bpf-running): kube-proxy serves and nothing cleans up its rules.", node.Node, kp);
            }

            IReadOnlyDictionary<string, FelixEffectiveValue> e = context.Effective(node);
            FelixEffectiveValue cleanup = e["bpfKubeProxyIptablesCleanupEnabled"];
            bool bpf = e.TryGetValue("bpfEnabled", out FelixEffectiveValue? enabled) && IsTrue(enabled.Value);
            if (!bpf || !IsTrue(cleanup.Value))
            {
                return Result(CheckStatus.Pass, bpf ? "kube-proxy runs and Felix leaves its rules alone (bpfKubeProxyIptablesCleanupEnabled false)." : "eBPF is not enabled here; kube-proxy serves.", node.Node,
                    $"bpfKubeProxyIptablesCleanupEnabled {cleanup.Value} ({cleanup.SourceDetail}); {kp}");
            }

            const string patch = "kubectl patch ds -n kube-system kube-proxy -p '{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"non-calico\":\"true\"}}}}}'";
            (IReadOnlyList<string> needing, bool partial) = dependents.Value;
            const string keep = "Set-FelixBpfConfig -BpfKubeProxyIptablesCleanupEnabled:$false";
            string fix = needing.Count > 0
                ? $"Do not disable kube-proxy everywhere: {string.Join(", ", needing)} still {(needing.Count == 1 ? "needs" : "need")} it (no eBPF dataplane there). " +
                  $"Keep it only there: kubectl label node {string.Join(" ", needing)} non-calico=true, then {patch}  or leave kube-proxy alone: {keep}"
                : partial
                    // Not every node was asked whether Felix fell back there: the safe fix comes first.
                    ? $"Leave kube-proxy alone and stop Felix removing its rules: {keep}  or disable kube-proxy ({patch}) once Test-CalicoEbpf -Check bpf-running passes on every node (only the nodes checked were asked)"
                    : $"Disable kube-proxy: {patch}  or, if kube-proxy must stay: {keep}";
            return Result(CheckStatus.Fail, "kube-proxy runs while Felix in eBPF mode deletes its iptables rules: they fight (high CPU, churning rules).", node.Node,
                $"{kp}; bpfKubeProxyIptablesCleanupEnabled true ({cleanup.SourceDetail})", fix);
        });
    }

    /// <summary>
    /// The cluster's nodes that kube-proxy serves, so that disabling it cluster-wide would cut their
    /// services: no calico-node or eBPF not enabled for them (every node: the DaemonSet is the
    /// cluster's), or Felix fell back (its log says so: read for the nodes checked only, so that
    /// -Node one on a large fleet reads one log). A node whose facts cannot be read is left out, never
    /// turning this check's result into an error. Partial: some nodes' logs were not read.
    /// </summary>
    private static (IReadOnlyList<string> Nodes, bool Partial) Dependents(CheckContext context)
    {
        var checkedNodes = new HashSet<string>(context.Nodes.Select(n => n.Node), StringComparer.Ordinal);
        bool logs = !context.Denied.Contains("read pod logs");
        var needing = new List<string>();
        bool partial = false;
        foreach (CalicoNode n in context.AllNodes)
        {
            try
            {
                if (!n.HasCalicoNode
                    || (context.Effective(n).TryGetValue("bpfEnabled", out FelixEffectiveValue? e) && !IsTrue(e.Value))
                    || (logs && checkedNodes.Contains(n.Node) && context.BpfRunning(n) == false))
                {
                    needing.Add(n.Node);
                }
                else if (!checkedNodes.Contains(n.Node) || !logs)
                {
                    partial = true;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                partial = true;
            }
        }

        return (needing.OrderBy(n => n, StringComparer.Ordinal).ToList(), partial);
    }
}
