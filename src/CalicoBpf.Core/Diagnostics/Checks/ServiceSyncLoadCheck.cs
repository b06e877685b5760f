using CalicoBpf.Cluster;

namespace CalicoBpf.Diagnostics;

/// <summary>5. Service sync load: a large cluster with bpfKubeProxyMinSyncPeriod at its default; endpoint slices where the field still exists.</summary>
public sealed class ServiceSyncLoadCheck : Check
{
    public const int ServiceThreshold = 1000;
    public const int SliceThreshold = 2000;

    public override string Id => "service-sync-load";

    public override string Title => "Service sync load fits the kube-proxy sync period";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        int services = context.ServiceCount;
        int slices = context.EndpointSliceCount;
        FelixBpfConfig? d = context.DefaultConfig;
        string evidence = $"{services} services, {slices} EndpointSlices; bpfKubeProxyMinSyncPeriod {(d?.BpfKubeProxyMinSyncPeriodValue is TimeSpan t ? t.ToString() : "default (1s)")}";
        bool warned = false;
        if (context.Felix.Knows(FelixFields.Find("bpfKubeProxyEndpointSlicesEnabled")!) && d?.BpfKubeProxyEndpointSlicesEnabled == false)
        {
            warned = true;
            yield return Result(CheckStatus.Warning, "bpfKubeProxyEndpointSlicesEnabled is false: Felix's kube-proxy reads Endpoints instead of EndpointSlices, which scales worse.",
                evidence: evidence, remediation: "Set-FelixBpfConfig -BpfKubeProxyEndpointSlicesEnabled:$true");
        }

        if ((services > ServiceThreshold || slices > SliceThreshold) && d?.BpfKubeProxyMinSyncPeriodValue is null)
        {
            warned = true;
            yield return Result(CheckStatus.Warning, $"A large cluster (over {ServiceThreshold} services or {SliceThreshold} EndpointSlices) with bpfKubeProxyMinSyncPeriod at its 1s default: every change costs Felix a full sync, and churn keeps it busy.",
                evidence: evidence, remediation: "Set-FelixBpfConfig -BpfKubeProxyMinSyncPeriod 5s");
        }

        if (!warned)
        {
            yield return Result(CheckStatus.Pass, "The service load fits the sync period.", evidence: evidence);
        }
    }
}
