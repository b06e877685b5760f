using System.Text.Json.Nodes;

namespace CalicoBpf.TestCluster.Tests;

/// <summary>A manifest install on Calico v3.28 CRDs: the real calico-bpf.yaml's DaemonSet, and the older CRD's fields.</summary>
[Collection(ManifestV328Cluster.Name)]
public sealed class ManifestInstallTests(ManifestV328Cluster cluster)
{
    [SkippableFact]
    public void Serves_the_real_calico_bpf_yaml_DaemonSet_in_kube_system_with_FELIX_BPFENABLED()
    {
        Kubectl kubectl = cluster.Kubectl;
        JsonNode ds = JsonNode.Parse(kubectl.Run("get", "ds", "-n", "kube-system", "calico-node", "-o", "json").Stdout)!;
        JsonNode container = ds["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Single(c => c!["name"]!.GetValue<string>() == "calico-node")!;
        Assert.Equal("true", container["env"]!.AsArray().Single(e => e!["name"]!.GetValue<string>() == "FELIX_BPFENABLED")!["value"]!.GetValue<string>());
        Assert.EndsWith("calico/node:v3.28.5", container["image"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Matches("doesn't have a resource type|the server doesn't have", kubectl.Run("get", "felixconfigurations.projectcalico.org").Joined);
    }

    [SkippableFact]
    public void Keeps_fields_its_older_CRD_still_has()
    {
        JsonNode f = JsonNode.Parse(cluster.Kubectl.Run("get", "felixconfigurations", "default", "-o", "json").Stdout)!;
        Assert.True(f["spec"]!["bpfKubeProxyEndpointSlicesEnabled"]!.GetValue<bool>());
    }
}
