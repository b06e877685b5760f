namespace CalicoBpf.Diagnostics;

/// <summary>3. Services have an implementation: kube-proxy disabled needs eBPF running on every node, and the API server's address in a ConfigMap.</summary>
public sealed class ServiceImplementationCheck : Check
{
    public override string Id => "service-implementation";

    public override string Title => "Services are implemented on every node";

    /// <summary>kube-proxy is disabled: no DaemonSet, none scheduled, or a nodeSelector no node matches (non-calico, the operator's key).</summary>
    public static bool KubeProxyDisabled(JsonObject? ds, out string evidence)
    {
        if (ds is null)
        {
            evidence = "no kube-proxy DaemonSet in kube-system";
            return true;
        }

        JsonObject? selector = ds["spec"]?["template"]?["spec"]?["nodeSelector"] as JsonObject;
        string? key = selector?.Select(p => p.Key).FirstOrDefault(k => k is "non-calico" or "operator.tigera.io/disable-kube-proxy");
        long desired = ds["status"]?["desiredNumberScheduled"]?.GetValue<long>() ?? 0;
        long ready = ds["status"]?["numberReady"]?.GetValue<long>() ?? 0;
        evidence = key is not null ? $"kube-proxy DaemonSet nodeSelector {key}" : $"kube-proxy DaemonSet: {ready} of {desired} pods ready";
        return key is not null || desired == 0;
    }

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        if (!KubeProxyDisabled(context.KubeProxy, out string kp))
        {
            yield return Result(CheckStatus.Pass, "kube-proxy runs, so services work on nodes where eBPF is not running too.", evidence: kp);
            yield break;
        }

        JsonObject? cm = context.ServicesEndpointConfigMap;
        bool bootstrap = context.Installation?["spec"]?["calicoNetwork"]?["bpfNetworkBootstrap"]?.GetValue<string>() == "Enabled";
        if (cm is null && !bootstrap)
        {
            string ns = context.Installation is null ? "kube-system" : "tigera-operator";
            yield return Result(CheckStatus.Fail, $"kube-proxy is disabled but the kubernetes-services-endpoint ConfigMap is missing in {ns}: Calico cannot reach the API server before its own service NAT is programmed.",
                evidence: kp, remediation: $"kubectl create configmap -n {ns} kubernetes-services-endpoint --from-literal=KUBERNETES_SERVICE_HOST=<api-server-address> --from-literal=KUBERNETES_SERVICE_PORT=<port>");
        }

        foreach (CheckResult r in PerNode(context, node =>
        {
            context.Require("read pod logs");
            return context.BpfRunning(node) == false
                ? Result(CheckStatus.Fail, "kube-proxy is disabled and eBPF is not running here: services do not work on this node.", node.Node, kp,
                    "Fix eBPF on the node (see bpf-running), or run kube-proxy again: kubectl patch ds -n kube-system kube-proxy --type json -p '[{\"op\":\"remove\",\"path\":\"/spec/template/spec/nodeSelector/non-calico\"}]'")
                : Result(CheckStatus.Pass, "kube-proxy is disabled and Calico's eBPF dataplane implements services here.", node.Node, kp);
        }))
        {
            yield return r;
        }
    }
}
