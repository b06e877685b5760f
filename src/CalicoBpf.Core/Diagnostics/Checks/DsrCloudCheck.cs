using CalicoBpf.Cluster;

namespace CalicoBpf.Diagnostics;

/// <summary>7. DSR per cloud: AWS source/destination check off, GCP IP forwarding on, no cloud load balancer in front.</summary>
public sealed class DsrCloudCheck : Check
{
    public override string Id => "dsr-cloud";

    public override string Title => "DSR mode suits the nodes' cloud";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        string mode = context.DefaultConfig?.BpfExternalServiceMode ?? "Tunnel";
        if (!mode.Equals("DSR", StringComparison.OrdinalIgnoreCase))
        {
            return new[] { Result(CheckStatus.Pass, $"bpfExternalServiceMode is {mode}: replies go back through the node that received the request.", evidence: $"bpfExternalServiceMode {mode}") };
        }

        return PerNode(context, node =>
        {
            string provider = node.ProviderId.Split(':')[0];
            string? need = provider switch
            {
                "aws" => "on AWS the EC2 source/destination check must be disabled on the node's interfaces",
                "gce" => "on GCP the instance must allow IP forwarding (canIpForward)",
                "azure" => "on Azure IP forwarding must be enabled on the node's NICs",
                _ => null,
            };
            string lb = "traffic that comes through a cloud load balancer does not work with DSR";
            return need is null
                ? Result(CheckStatus.Warning, $"DSR mode: replies leave from the backend's node directly, so the underlay must accept them; {lb}.", node.Node, $"bpfExternalServiceMode DSR; providerID {node.ProviderId}", "Set-FelixBpfConfig -BpfExternalServiceMode Tunnel")
                : Result(CheckStatus.Warning, $"DSR mode: {need}, and {lb}.", node.Node, $"bpfExternalServiceMode DSR; providerID {node.ProviderId}", "Set-FelixBpfConfig -BpfExternalServiceMode Tunnel");
        });
    }
}
