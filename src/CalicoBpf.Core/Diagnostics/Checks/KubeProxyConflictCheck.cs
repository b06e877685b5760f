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
            IReadOnlyList<string> dependents = Dependents(context);
            string fix = dependents.Count == 0
                ? $"Disable kube-proxy: {patch}  or, if kube-proxy must stay: Set-FelixBpfConfig -BpfKubeProxyIptablesCleanupEnabled:$false"
                : $"Do not disable kube-proxy everywhere: {string.Join(", ", dependents)} still {(dependents.Count == 1 ? "needs" : "need")} it (no eBPF dataplane there). " +
                  $"Keep it only there: kubectl label node {string.Join(" ", dependents)} non-calico=true, then {patch}  or leave kube-proxy alone: Set-FelixBpfConfig -BpfKubeProxyIptablesCleanupEnabled:$false";
            return Result(CheckStatus.Fail, "kube-proxy runs while Felix in eBPF mode deletes its iptables rules: they fight (high CPU, churning rules).", node.Node,
                $"{kp}; bpfKubeProxyIptablesCleanupEnabled true ({cleanup.SourceDetail})", fix);
        });
    }

    /// <summary>
    /// The cluster's nodes that kube-proxy serves, so that disabling it cluster-wide would cut their
    /// services: no calico-node, eBPF not enabled for them, or Felix fell back (its log says so).
    /// Every node counts, not only those -Node selected: the DaemonSet is the cluster's.
    /// </summary>
    private static IReadOnlyList<string> Dependents(CheckContext context) =>
        context.AllNodes.Where(n => !n.HasCalicoNode
                || (context.Effective(n).TryGetValue("bpfEnabled", out FelixEffectiveValue? e) && !IsTrue(e.Value))
                || (!context.Denied.Contains("read pod logs") && context.BpfRunning(n) == false))
            .Select(n => n.Node).OrderBy(n => n, StringComparer.Ordinal).ToList();
}
