using System.Text.Json.Nodes;
using Xunit;

namespace CalicoBpf.TestCluster.Tests;

/// <summary>The test cluster reads the protobuf SelfSubjectAccessReviews kubectl auth can-i sends, byte for byte as kubectl 1.32 sent them.</summary>
public class KubeProtobufTests
{
    // kubectl auth can-i create pods/exec -n calico-system (-v=9): "pods/exec" is TYPE/NAME to kubectl, so name is "exec".
    private const string CanICreatePodsNamedExec =
        "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f763112" +
        "1753656c665375626a6563744163636573735265766965771249" +
        "0a100a0012001a0022002a0032003800420012" +
        "2b0a290a0d63616c69636f2d73797374656d1206637265617465" +
        "1a0022002a04706f647332003a0465786563" +
        "1a0808001200" + "1a002000" + "1a002200";

    [Fact]
    public void Decodes_kubectls_access_review()
    {
        JsonObject review = KubeProtobuf.Decode(Convert.FromHexString(CanICreatePodsNamedExec));
        Assert.Equal("authorization.k8s.io/v1", (string?)review["apiVersion"]);
        Assert.Equal("SelfSubjectAccessReview", (string?)review["kind"]);
        JsonNode a = review["spec"]!["resourceAttributes"]!;
        Assert.Equal("calico-system", (string?)a["namespace"]);
        Assert.Equal("create", (string?)a["verb"]);
        Assert.Equal("pods", (string?)a["resource"]);
        Assert.Equal("exec", (string?)a["name"]);
        Assert.Null(a["group"]);
        Assert.Null(a["subresource"]);
    }

    [Theory]
    [InlineData("", "magic")]
    [InlineData("6b3873000a", "ends inside a varint")]
    [InlineData("6b3873000a7f00", "claims 127 bytes")]
    [InlineData("6b3873000b", "wire type 3")]
    public void Refuses_broken_bodies_naming_the_fault(string hex, string message)
    {
        var ex = Assert.Throws<FormatException>(() => KubeProtobuf.Decode(Convert.FromHexString(hex)));
        Assert.Contains(message, ex.Message);
    }

    [Fact]
    public void Decodes_a_rules_review()
    {
        // kubectl auth can-i --list -n calico-system: spec (2) with namespace (1).
        byte[] typeMeta = [0x0a, 23, .. "authorization.k8s.io/v1"u8, 0x12, 22, .. "SelfSubjectRulesReview"u8];
        byte[] spec = [0x0a, 13, .. "calico-system"u8];
        byte[] raw = [0x0a, 0, 0x12, (byte)spec.Length, .. spec];
        byte[] body = [.. "k8s\0"u8, 0x0a, (byte)typeMeta.Length, .. typeMeta, 0x12, (byte)raw.Length, .. raw];
        JsonObject review = KubeProtobuf.Decode(body);
        Assert.Equal("SelfSubjectRulesReview", (string?)review["kind"]);
        Assert.Equal("calico-system", (string?)review["spec"]!["namespace"]);
    }

    [Fact]
    public void A_kind_it_does_not_decode_is_not_supported()
    {
        // An Unknown whose typeMeta (field 1) is apiVersion apps/v1 (1), kind DaemonSet (2).
        byte[] typeMeta = [0x0a, 7, .. "apps/v1"u8, 0x12, 9, .. "DaemonSet"u8];
        byte[] body = [.. "k8s\0"u8, 0x0a, (byte)typeMeta.Length, .. typeMeta];
        var ex = Assert.Throws<NotSupportedException>(() => KubeProtobuf.Decode(body));
        Assert.Equal("DaemonSet (apps/v1)", ex.Message);
    }
}
