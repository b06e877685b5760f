namespace CalicoBpf.TestCluster.Tests;

/// <summary>
/// deploy/calicobpf-rbac.yaml's roles as kubectl auth can-i sees them: the test cluster evaluates the
/// manifest's ClusterRoles and ClusterRoleBindings as Kubernetes' RBAC does, and kubectl posts its
/// SelfSubjectAccessReviews as protobuf, as to a real API server.
/// </summary>
[Collection(RbacCluster.Name)]
public sealed class RbacReviewTests(RbacCluster cluster)
{
    [SkippableTheory]
    [InlineData("reader", "list", "nodes", "", "yes")]
    [InlineData("reader", "list", "felixconfigurations.crd.projectcalico.org", "", "yes")]
    [InlineData("reader", "create", "pods", "exec", "no")]
    [InlineData("reader", "patch", "felixconfigurations.crd.projectcalico.org", "", "no")]
    [InlineData("operator", "create", "pods", "exec", "yes")]
    [InlineData("operator", "patch", "felixconfigurations.crd.projectcalico.org", "", "yes")]
    [InlineData("operator", "delete", "pods", "", "no")]
    [InlineData("nobody", "list", "nodes", "", "no")]
    public void Kubectl_auth_can_i_answers_as_the_role_allows(string who, string verb, string resource, string subresource, string answer)
    {
        var args = new List<string> { "auth", "can-i", verb, resource, "-n", "calico-system" };
        if (subresource.Length > 0)
        {
            args.Add("--subresource=" + subresource);
        }

        KubectlResult r = cluster.As(who + "-token").Run(args.ToArray());
        Assert.Equal(answer, r.Text);
        Assert.Equal(answer == "yes" ? 0 : 1, r.ExitCode);
    }

    [SkippableFact]
    public void Kubectl_auth_can_i_list_shows_each_roles_rules_with_pods_exec_for_the_operator_only()
    {
        KubectlResult op = cluster.As("operator-token").Run("auth", "can-i", "--list", "-n", "calico-system");
        Assert.Equal(0, op.ExitCode);
        Assert.Equal(1, Lines.Matching(op.AllLines, @"^pods/exec\s+\[\]\s+\[\]\s+\[create get\]$"));
        Assert.Equal(1, Lines.Matching(op.AllLines, @"^felixconfigurations\.crd\.projectcalico\.org\s.*\bpatch\b"));
        KubectlResult reader = cluster.As("reader-token").Run("auth", "can-i", "--list", "-n", "calico-system");
        Assert.Equal(0, reader.ExitCode);
        Assert.Equal(0, Lines.Matching(reader.AllLines, @"^pods/exec\s"));
        Assert.Equal(1, Lines.Matching(reader.AllLines, @"^nodes\s.*\[get list\]$"));
    }
}
