using System.Diagnostics;
using System.Text.Json.Nodes;

namespace CalicoBpf.TestCluster.Tests;

/// <summary>
/// The test cluster behaves like a real API server for kubectl: its nodes, their calico-node pods,
/// their logs, and exec as a kubelet and containerd run it, in the node's calico-node container.
/// </summary>
[Collection(DemoCluster.Name)]
public sealed class NodesThroughKubectlTests(DemoCluster cluster)
{
    [SkippableFact]
    public void Kubectl_get_pods_A_and_get_nodes()
    {
        KubectlResult pods = cluster.Kubectl.Run("get", "pods", "-A", "-o", "json");
        Assert.Equal(0, pods.ExitCode);
        Assert.Equal(3, JsonNode.Parse(pods.Stdout)!["items"]!.AsArray().Count(p => p!["metadata"]!["labels"]?["k8s-app"]?.GetValue<string>() == "calico-node"));
        Assert.Equal(new[] { "node/node-a", "node/node-b", "node/node-c", "node/node-d" }, cluster.Kubectl.Run("get", "nodes", "-o", "name").Lines);
    }

    [SkippableFact]
    public void Kubectl_logs_and_kubectl_exec_bpftool_map_show_run_against_the_simulated_node()
    {
        Kubectl kubectl = cluster.Kubectl;
        string pod = CalicoNodePod(kubectl, "node-a");
        Assert.Contains(kubectl.Run("logs", "-n", "calico-system", pod, "-c", "calico-node").Lines, l => l.Contains("BPF enabled, starting BPF endpoint manager", StringComparison.Ordinal));
        KubectlResult maps = kubectl.Run("exec", "-n", "calico-system", pod, "-c", "calico-node", "--", "bpftool", "-j", "map", "show", "pinned", "/sys/fs/bpf/tc/globals/cali_v4_ct3");
        Assert.Equal("cali_v4_ct3", JsonNode.Parse(maps.Stdout)!["name"]!.GetValue<string>());
        Assert.Equal(3, kubectl.Run("exec", "-n", "calico-system", pod, "--", "sh", "-c", "exit 3").ExitCode);
    }

    [SkippableFact]
    public void Refuses_exec_to_the_read_only_identity_with_403_as_RBAC_does()
    {
        string pod = cluster.Kubectl.Run("get", "pods", "-n", "calico-system", "-o", "name").Lines[0];
        KubectlResult r = cluster.As("readonly-token").Run("exec", "-n", "calico-system", pod, "--", "true");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Matches("forbidden.*pods/exec", r.Joined);
    }

    [SkippableFact]
    public void A_program_the_image_lacks_is_an_InternalError_Status_with_no_exit_code_as_containerd_answers()
    {
        Kubectl kubectl = cluster.Kubectl;
        KubectlResult r = kubectl.Run("exec", "-n", "calico-system", CalicoNodePod(kubectl, "node-a"), "-c", "calico-node", "--", "nsenter", "--version");
        Assert.Equal(1, r.ExitCode);
        Assert.Matches(@"Internal error occurred: error executing command in container: .*OCI runtime exec failed: exec failed: unable to start container process: exec: ""nsenter"": executable file not found in \$PATH: unknown", r.Joined);
    }

    [SkippableFact]
    public void Refuses_a_container_the_pod_does_not_have_and_a_pod_of_one_container_needs_none()
    {
        Kubectl kubectl = cluster.Kubectl;
        string pod = CalicoNodePod(kubectl, "node-a");
        Assert.Contains("container calico-nodes is not valid for pod calico-node-", kubectl.Run("exec", "-n", "calico-system", pod, "-c", "calico-nodes", "--", "true").Joined);
        Assert.Equal(0, kubectl.Run("exec", "-n", "calico-system", pod, "--", "true").ExitCode);
    }

    [SkippableFact]
    public async Task A_client_that_goes_away_kills_nothing_and_a_command_that_blocks_stays()
    {
        Kubectl kubectl = cluster.Kubectl;
        ApiServer server = cluster.Host.Server;
        using (Process client = kubectl.Start("exec", "-n", "calico-system", CalicoNodePod(kubectl, "node-b"), "-c", "calico-node", "--", "sleep", "7"))
        {
            try
            {
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while (!server.Processes("node-b").Contains("sleep 7") && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(100);
                }
            }
            finally
            {
                client.Kill(entireProcessTree: true);
                await client.WaitForExitAsync();
            }
        }

        // kubectl is gone; its sleep is not.
        Assert.Contains("sleep 7", server.Processes("node-b"));
        Assert.Empty(await Idle(server, "node-b", TimeSpan.FromSeconds(15)));
    }

    /// <summary>The node's container once nothing runs in it, or what still runs after <paramref name="wait"/>.</summary>
    private static async Task<IReadOnlyList<string>> Idle(ApiServer server, string node, TimeSpan wait)
    {
        var deadline = DateTime.UtcNow + wait;
        IReadOnlyList<string> left;
        while ((left = server.Processes(node)).Count > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        return left;
    }

    /// <summary>The name of the calico-node pod on a node.</summary>
    private static string CalicoNodePod(Kubectl kubectl, string node) =>
        JsonNode.Parse(kubectl.Run("get", "pods", "-n", "calico-system", "-o", "json").Stdout)!["items"]!.AsArray()
            .Single(p => p!["spec"]!["nodeName"]?.GetValue<string>() == node)!["metadata"]!["name"]!.GetValue<string>();
}
