using CalicoBpf.Cluster;

namespace CalicoBpf.Diagnostics;

/// <summary>6. NodePort reachability: traffic to backends on other nodes is VXLAN on UDP vxlanPort, which the fabric must allow.</summary>
public sealed class NodePortVxlanCheck : Check
{
    public override string Id => "nodeport-vxlan";

    public override string Title => "NodePort traffic between nodes can flow";

    /// <summary>Kubernetes' default NodePort range (the API server's --service-node-port-range).</summary>
    public const int NodePortMin = 30000;
    public const int NodePortMax = 32767;

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        long port = context.DefaultConfig?.VxlanPort ?? 4789;
        string evidence = $"vxlanPort {port}{(context.DefaultConfig?.VxlanPort is null ? " (default)" : " (FelixConfiguration default)")}";
        string? clash = context.Services
            .SelectMany(s => (s["spec"]?["ports"] as JsonArray ?? new JsonArray()).OfType<JsonObject>()
                .Where(p => p["nodePort"]?.GetValue<long>() == port && (p["protocol"]?.GetValue<string>() ?? "TCP") == "UDP")
                .Select(_ => $"{s["metadata"]?["namespace"]}/{s["metadata"]?["name"]}"))
            .FirstOrDefault();
        if (clash is not null)
        {
            yield return Result(CheckStatus.Fail, $"Service {clash} has UDP node port {port}, the port VXLAN between nodes uses: one of them does not get its packets.",
                evidence: $"{evidence}; {clash} nodePort {port}/UDP", remediation: $"Set-FelixBpfConfig -VxlanPort 4789  (or give {clash} another node port)");
            yield break;
        }

        if (port is >= NodePortMin and <= NodePortMax)
        {
            yield return Result(CheckStatus.Warning, $"vxlanPort {port} lies in the NodePort range ({NodePortMin}-{NodePortMax}): a UDP service may be given it and collide with VXLAN.",
                evidence: evidence, remediation: "Set-FelixBpfConfig -VxlanPort 4789");
            yield break;
        }

        yield return Result(CheckStatus.Pass, $"External access to services whose backends are on other nodes is forwarded with VXLAN: the network between nodes must allow UDP {port} (firewalls, security groups).",
            evidence: evidence);
    }
}
