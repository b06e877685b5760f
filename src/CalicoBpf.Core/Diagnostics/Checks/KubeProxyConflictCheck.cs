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

            return Result(CheckStatus.Fail, "kube-proxy runs while Felix in eBPF mode deletes its iptables rules: they fight (high CPU, churning rules).", node.Node,
                $"{kp}; bpfKubeProxyIptablesCleanupEnabled true ({cleanup.SourceDetail})",
                "Disable kube-proxy: kubectl patch ds -n kube-system kube-proxy -p '{\"spec\":{\"template\":{\"spec\":{\"nodeSelector\":{\"non-calico\":\"true\"}}}}}'  or, if kube-proxy must stay: Set-FelixBpfConfig -BpfKubeProxyIptablesCleanupEnabled:$false");
        });
    }
}
