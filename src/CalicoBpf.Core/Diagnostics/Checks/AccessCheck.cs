namespace CalicoBpf.Diagnostics;

/// <summary>12. The identity in use may read what the checks need and exec into calico-node; missing rights are reported once.</summary>
public sealed class AccessCheck : Check
{
    public override string Id => "access";

    public override string Title => "The identity in use may run the checks";

    public override string HelpUri => "https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access";

    /// <summary>Locally the rights are root's: reported here once, and the checks that need them are Skipped.</summary>
    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        if (context.Local is { } local)
        {
            yield return Interop.KernelInfo.IsRoot
                ? Result(CheckStatus.Pass, "Running as root: this machine's BPF maps and trace buffer can be read.", local.Node)
                : Result(CheckStatus.Fail, "Not running as root: this machine's BPF maps and trace buffer are root's. The checks that read them are skipped.", local.Node,
                    $"effective uid {Environment.UserName}", "Run pwsh as root (sudo pwsh), or check the cluster's nodes without -Local");
            yield break;
        }

        var needed = new (string Verb, string Group, string Resource, string? Sub, string Use)[]
        {
            ("list", string.Empty, "nodes", null, "list nodes"),
            ("list", string.Empty, "pods", null, "list pods"),
            ("get", string.Empty, "pods", "log", "read pod logs"),
            ("create", string.Empty, "pods", "exec", "exec into calico-node"),
            ("get", "apps", "daemonsets", null, "read DaemonSets"),
            ("list", context.Felix.Resource.Group, "felixconfigurations", null, "list FelixConfigurations"),
        };
        var missing = needed.Where(n => !context.MayDo(n.Verb, n.Group, n.Resource, n.Sub)).ToList();
        foreach (var m in missing)
        {
            context.Denied.Add(m.Use);
        }

        if (missing.Count == 0)
        {
            yield return Result(CheckStatus.Pass, "The identity may read everything the checks need and exec into calico-node.");
            yield break;
        }

        string list = string.Join(", ", missing.Select(m => $"{m.Verb} {(m.Group.Length > 0 ? m.Group + "/" : string.Empty)}{m.Resource}{(m.Sub is null ? string.Empty : "/" + m.Sub)}"));
        yield return Result(CheckStatus.Fail, $"The identity in use lacks: {list}. The checks that need them are skipped.",
            evidence: list, remediation: "kubectl apply -f deploy/ (the calicobpf-operator ClusterRole), or run with a kubeconfig that has these rights");
    }
}
