using System.Globalization;
using System.Text.Json.Nodes;
using CalicoBpf.Cluster;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// One check of Calico's eBPF troubleshooting guide. Cluster checks return one result; per-node
/// checks one per node. A check that cannot get what it needs says so (Skipped or Error) and never
/// stops the others.
/// </summary>
public abstract class Check
{
    public const string Guide = "https://docs.tigera.io/calico/latest/operations/ebpf/troubleshoot-ebpf";

    public abstract string Id { get; }

    public abstract string Title { get; }

    public virtual string HelpUri => Guide;

    /// <summary>Runs in Test-CalicoEbpf -Local (on this machine, without a cluster).</summary>
    public virtual bool Local => false;

    public abstract IEnumerable<CheckResult> Run(CheckContext context);

    protected CheckResult Result(CheckStatus status, string message, string node = "", string evidence = "", string remediation = "") => new()
    {
        Check = Id,
        Title = Title,
        Node = node,
        Status = status,
        Message = message,
        Evidence = evidence,
        Remediation = remediation,
        HelpUri = HelpUri,
    };

    /// <summary>Runs per node, each node on its own: a node whose facts cannot be had is one Error (or Skipped), not the end of the check.</summary>
    protected IEnumerable<CheckResult> PerNode(CheckContext context, Func<CalicoNode, CheckResult> check)
    {
        var results = new List<CheckResult>();
        foreach (CalicoNode node in context.Nodes)
        {
            try
            {
                results.Add(check(node));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                results.Add(Failure(ex, node.Node));
            }
        }

        return results;
    }

    /// <summary>A check of node dataplanes: this machine's with -Local, else each node's through exec.</summary>
    protected IEnumerable<CheckResult> OnEachDataplane(CheckContext context, Func<Transport.INodeDataplane, string, CheckResult> check) =>
        context.Local is { } local
            ? OnLocal(local, l => check(l, l.Node))
            : PerNode(context, node =>
            {
                context.Require("exec into calico-node");
                return check(context.Dataplane(node), node.Node);
            });

    /// <summary>Runs on this machine (-Local): a machine without Calico's maps is Skipped, as a node without them is.</summary>
    protected IEnumerable<CheckResult> OnLocal(Transport.INodeDataplane local, Func<Transport.INodeDataplane, CheckResult> check)
    {
        try
        {
            return new[] { check(local) };
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new[] { Failure(ex, local.Node) };
        }
    }

    /// <summary>
    /// What an exception a check met makes of its result: a fact it could not have (no cluster, no
    /// right, no Calico maps where eBPF is not running) is Skipped with the reason; anything else is Error.
    /// </summary>
    public CheckResult Failure(Exception ex, string node) => ex switch
    {
        CheckUnavailableException => Result(CheckStatus.Skipped, $"Not checked: {ex.Message}.", node),
        Interop.BpfEnvironmentException { Problem: Interop.BpfEnvironmentProblem.NoBpfFs or Interop.BpfEnvironmentProblem.NoCalicoMaps } =>
            Result(CheckStatus.Skipped, "Not checked: no Calico maps are pinned there, eBPF is not running (see bpf-running).", node, ex.Message),
        ClusterException { StatusCode: 401 or 403 } => Result(CheckStatus.Skipped, "Not checked: " + ex.Message + ".", node),
        _ => Result(CheckStatus.Error, $"The check could not run: {ex.Message}", node),
    };

    protected static string Quote(FelixLogLine line) => line.Text;

    protected static bool IsTrue(string value) => value.Equals("true", StringComparison.OrdinalIgnoreCase);
}

/// <summary>The checks, in the guide's order.</summary>
public static class Checks
{
    public static IReadOnlyList<Check> All { get; } = new Check[]
    {
        new AccessCheck(),
        new BpfRequestedCheck(),
        new BpfRunningCheck(),
        new ServiceImplementationCheck(),
        new KubeProxyConflictCheck(),
        new ServiceSyncLoadCheck(),
        new NodePortVxlanCheck(),
        new DsrCloudCheck(),
        new DebugLoggingCheck(),
        new OverlayCheck(),
        new DropsCheck(),
        new CapacityCheck(),
    };

    /// <summary>Runs the checks; an exception in one becomes its Error (or Skipped) result and the rest go on.</summary>
    public static IEnumerable<CheckResult> Run(CheckContext context, IEnumerable<Check> checks)
    {
        foreach (Check check in checks)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            List<CheckResult> results;
            try
            {
                results = check.Run(context).ToList();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                results = new List<CheckResult> { check.Failure(ex, string.Empty) };
            }

            foreach (CheckResult r in results)
            {
                yield return r;
            }
        }
    }
}

/// <summary>12. The identity in use may read what the checks need and exec into calico-node; missing rights are reported once.</summary>
public sealed class AccessCheck : Check
{
    public override string Id => "access";

    public override string Title => "The identity in use may run the checks";

    public override string HelpUri => "https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
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

/// <summary>1. eBPF requested: FelixConfiguration bpfEnabled, FELIX_BPFENABLED of calico-node and the Installation's linuxDataplane agree.</summary>
public sealed class BpfRequestedCheck : Check
{
    public override string Id => "bpf-requested";

    public override string Title => "eBPF mode is requested consistently";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        var says = new List<(string Where, bool On)>();
        if (context.DefaultConfig?.BpfEnabled is bool b)
        {
            says.Add(($"FelixConfiguration default bpfEnabled: {b.ToString().ToLowerInvariant()}", b));
        }

        if (context.CalicoEnvironment.TryGetValue("FELIX_BPFENABLED", out var env))
        {
            says.Add(($"{env.Detail}: {env.Value}", IsTrue(env.Value)));
        }

        string? dataplane = context.Installation?["spec"]?["calicoNetwork"]?["linuxDataplane"]?.GetValue<string>();
        if (context.Installation is not null)
        {
            dataplane ??= "Iptables";
            says.Add(($"Installation default linuxDataplane: {dataplane}", dataplane == "BPF"));
        }

        string evidence = string.Join("; ", says.Select(s => s.Where));
        string fix = context.Installation is not null
            ? "Set-FelixBpfConfig -BpfEnabled:$true -UpdateInstallation"
            : "Set-FelixBpfConfig -BpfEnabled:$true";
        if (says.Count == 0 || says.All(s => !s.On))
        {
            yield return Result(CheckStatus.Fail, "eBPF mode is not requested anywhere: Felix runs the iptables or nftables dataplane.", evidence: evidence.Length > 0 ? evidence : "bpfEnabled is not set (default false)", remediation: fix);
        }
        else if (says.Any(s => !s.On))
        {
            // The environment beats FelixConfiguration; the operator writes bpfEnabled from linuxDataplane.
            yield return Result(CheckStatus.Fail, "The places that switch eBPF mode disagree: " + string.Join(" but ", says.GroupBy(s => s.On).Select(g => string.Join(", ", g.Select(s => s.Where)))) + ".",
                evidence: evidence, remediation: fix);
        }
        else
        {
            yield return Result(CheckStatus.Pass, "eBPF mode is requested, and every place that switches it agrees.", evidence: evidence);
        }
    }
}

/// <summary>2. eBPF actually running, per node: the calico-node log, Calico's maps, the kernel minimum for the node's distribution.</summary>
public sealed class BpfRunningCheck : Check
{
    public override string Id => "bpf-running";

    public override string Title => "eBPF dataplane running on the node";

    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        if (context.Local is { } local)
        {
            return new[] { LocalResult(local) };
        }

        return PerNode(context, node =>
        {
            context.Require("read pod logs");
            IReadOnlyList<FelixLogLine> log = context.Log(node);
            FelixLogLine? fallback = FelixLog.Last(log, FelixLog.NotSupported);
            FelixLogLine? verifier = FelixLog.Last(log, FelixLog.VerifierRejected);
            bool? running = context.BpfRunning(node);
            (Version min, int minRelease, string distro) = KernelRequirement.Gate(node.KernelVersion, node.OsImage);
            string kernel = $"kernel {node.KernelVersion} ({distro}; Felix needs at least {min}{(minRelease > 0 ? "-" + minRelease : string.Empty)}, current releases 5.10)";
            if (running == false && fallback is not null)
            {
                return Result(CheckStatus.Fail, $"Felix fell back to iptables: {fallback.Field("error") ?? "the kernel does not support the eBPF dataplane"}.", node.Node, Quote(fallback),
                    "Upgrade the node's kernel (5.10 or newer), or take the node out of the eBPF cluster.");
            }

            if (verifier is not null)
            {
                return Result(CheckStatus.Fail, "The kernel's BPF verifier rejects Calico's programs: the node is not ready.", node.Node, Quote(verifier), "Upgrade the node's kernel to 5.10 or newer.");
            }

            // Counting the pinned maps needs exec; without the right the log and the kernel still tell.
            string pins = context.Denied.Contains("exec into calico-node") ? "maps not counted: may not exec" : context.Dataplane(node).ListMaps().Count + " Calico maps are pinned";
            if (!KernelRequirement.PassesGate(node.KernelVersion, node.OsImage))
            {
                return Result(CheckStatus.Fail, $"The {kernel} is below Felix's minimum: Felix disables eBPF mode.", node.Node, kernel, "Upgrade the node's kernel (5.10 or newer).");
            }

            if (running != true)
            {
                return Result(CheckStatus.Warning, $"The calico-node log does not show eBPF starting (the line may have rotated away); {pins}.",
                    node.Node, $"no \"{FelixLog.Started}\" in the last 5000 lines", "kubectl logs -n " + node.Namespace + " " + node.Pod + " -c calico-node | Select-String BPF");
            }

            if (KernelRequirement.TryParse(node.KernelVersion, out Version v, out _) && v < KernelRequirement.Effective)
            {
                return Result(CheckStatus.Warning, $"eBPF runs, but the {kernel} is older than 5.10, the minimum of current Calico releases.", node.Node, kernel, "Upgrade the node's kernel to 5.10 or newer.");
            }

            return Result(CheckStatus.Pass, $"eBPF dataplane running: the log says so and {pins}; {kernel}.", node.Node, Quote(FelixLog.Last(log, FelixLog.Started)!));
        });
    }

    private CheckResult LocalResult(Transport.INodeDataplane local)
    {
        string kernel = Interop.KernelInfo.Release;
        int maps;
        try
        {
            maps = local.ListMaps().Count;
        }
        catch (Interop.BpfEnvironmentException ex) when (ex.Problem is Interop.BpfEnvironmentProblem.NoBpfFs or Interop.BpfEnvironmentProblem.NoCalicoMaps)
        {
            return Result(CheckStatus.Fail, "eBPF is not running on this machine: " + ex.Message, local.Node, $"kernel {kernel}",
                "Read the calico-node log for why Felix is not in eBPF mode, and Test-CalicoEbpf -Check bpf-requested on the cluster.");
        }

        return KernelRequirement.TryParse(kernel, out Version v, out _) && v < KernelRequirement.Effective
            ? Result(CheckStatus.Warning, $"{maps} Calico maps are pinned, but kernel {kernel} is older than 5.10, the minimum of current Calico releases.", local.Node, $"kernel {kernel}")
            : Result(CheckStatus.Pass, $"{maps} Calico maps are pinned in {local.PinDirectory}; kernel {kernel}.", local.Node, $"kernel {kernel}");
    }
}

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
        string evidence = $"{services} services, {slices} EndpointSlices; bpfKubeProxyMinSyncPeriod {(d?.BpfKubeProxyMinSyncPeriod is TimeSpan t ? t.ToString() : "default (1s)")}";
        bool warned = false;
        if (context.Felix.Knows(FelixFields.Find("bpfKubeProxyEndpointSlicesEnabled")!) && d?.BpfKubeProxyEndpointSlicesEnabled == false)
        {
            warned = true;
            yield return Result(CheckStatus.Warning, "bpfKubeProxyEndpointSlicesEnabled is false: Felix's kube-proxy reads Endpoints instead of EndpointSlices, which scales worse.",
                evidence: evidence, remediation: "Set-FelixBpfConfig -BpfKubeProxyEndpointSlicesEnabled:$true");
        }

        if ((services > ServiceThreshold || slices > SliceThreshold) && d?.BpfKubeProxyMinSyncPeriod is null)
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

/// <summary>8. Debug logging left on costs performance.</summary>
public sealed class DebugLoggingCheck : Check
{
    public override string Id => "debug-logging";

    public override string Title => "BPF debug logging is off";

    /// <summary>Locally there is no FelixConfiguration to read: the kernel's trace buffer shows whether Calico's programs log.</summary>
    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context) => context.Local is { } local ? new[] { TraceBuffer(local) } : PerNode(context, node =>
    {
        FelixEffectiveValue level = context.Effective(node)["bpfLogLevel"];
        if (!level.Value.Equals("Debug", StringComparison.OrdinalIgnoreCase))
        {
            return Result(CheckStatus.Pass, $"bpfLogLevel is {(level.Value.Length == 0 ? "Off" : level.Value)}.", node.Node, $"bpfLogLevel {level.Value} ({level.SourceDetail})");
        }

        string fix = level.Source switch
        {
            FelixValueSource.NodeConfiguration => $"Set-FelixBpfConfig -Node {node.Node} -Clear bpfLogLevel",
            FelixValueSource.GlobalConfiguration => "Set-FelixBpfConfig -Clear bpfLogLevel",
            FelixValueSource.SelectorConfiguration => $"Set-FelixBpfConfig -Name {level.SourceDetail["FelixConfiguration ".Length..]} -Clear bpfLogLevel",
            _ => $"Remove {level.SourceDetail}",
        };
        return Result(CheckStatus.Warning, "bpfLogLevel is Debug: every BPF program logs every packet to the trace pipe, a significant performance cost.", node.Node,
            $"bpfLogLevel Debug ({level.SourceDetail})", fix);
    });

    private CheckResult TraceBuffer(Transport.INodeDataplane local)
    {
        int lines;
        try
        {
            lines = DebugTrace.CalicoLines(local, CancellationToken.None);
        }
        catch (Interop.BpfException ex)
        {
            return Result(CheckStatus.Skipped, "Not checked: the kernel's trace buffer cannot be read here: " + ex.Message, local.Node);
        }

        return lines == 0
            ? Result(CheckStatus.Pass, "No Calico program line in the kernel's trace buffer: BPF debug logging is off.", local.Node, "0 Calico lines in the trace buffer")
            : Result(CheckStatus.Warning, $"The kernel's trace buffer holds {lines} lines from Calico's programs: bpfLogLevel is (or was lately) Debug, a significant performance cost.",
                local.Node, $"{lines} Calico lines in the trace buffer", "Set-FelixBpfConfig -Node " + local.Node + " -Clear bpfLogLevel (from a machine with cluster access)");
    }
}

/// <summary>8 (local part). Calico lines in the trace buffer mean its programs log (bpfLogLevel Debug, now or lately).</summary>
public static class DebugTrace
{
    public static int CalicoLines(Transport.INodeDataplane node, CancellationToken cancellationToken) =>
        node.ReadTraceLines(follow: false, tracingDirectory: null, cancellationToken)
            .Select(l => Trace.TraceLogParser.Parse(l, node.Node, release: node.Release.Release))
            .Count(e => e.Direction != TraceDirection.None);
}

/// <summary>9. Overlay choice: IPIP pools perform poorly in eBPF mode; overlay flags without overlay pools disable optimisations.</summary>
public sealed class OverlayCheck : Check
{
    public override string Id => "overlay";

    public override string Title => "The overlay suits eBPF mode";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        static string Mode(JsonObject pool, string field) => pool["spec"]?[field]?.GetValue<string>() is { Length: > 0 } m ? m : "Never";
        var pools = context.IpPools.Select(p => (Name: p["metadata"]?["name"]?.GetValue<string>() ?? "?", Cidr: p["spec"]?["cidr"]?.GetValue<string>() ?? "?", Ipip: Mode(p, "ipipMode"), Vxlan: Mode(p, "vxlanMode"))).ToList();
        string evidence = string.Join("; ", pools.Select(p => $"{p.Name} {p.Cidr} ipipMode {p.Ipip} vxlanMode {p.Vxlan}"));
        var ipip = pools.Where(p => p.Ipip != "Never").ToList();
        bool found = false;
        if (ipip.Count > 0)
        {
            found = true;
            yield return Result(CheckStatus.Warning, $"IP pools with IPIP ({string.Join(", ", ipip.Select(p => p.Name))}): IPIP performs poorly in eBPF mode; VXLAN is recommended.",
                evidence: evidence, remediation: $"kubectl patch ippools.{context.Felix.Resource.Group} {ipip[0].Name} --type merge -p '{{\"spec\":{{\"ipipMode\":\"Never\",\"vxlanMode\":\"{ipip[0].Ipip}\"}}}}'");
        }

        FelixBpfConfig? d = context.DefaultConfig;
        if (pools.All(p => p.Ipip == "Never" && p.Vxlan == "Never") && (d?.IpipEnabled == true || d?.VxlanEnabled == true))
        {
            found = true;
            string flag = d!.IpipEnabled == true ? "ipipEnabled" : "vxlanEnabled";
            yield return Result(CheckStatus.Warning, $"No IP pool uses an overlay but {flag} is true: the overlay device is created for nothing, and it turns off eBPF optimisations.",
                evidence: $"{evidence}; {flag} true (FelixConfiguration default)", remediation: $"Set-FelixBpfConfig -Clear {flag}");
        }

        if (!found)
        {
            yield return Result(CheckStatus.Pass, "The IP pools' overlay suits eBPF mode.", evidence: evidence);
        }
    }
}

/// <summary>
/// 10. Drops per node: non-zero Dropped counters (top interfaces and reasons) and clsact qdisc drops.
/// An interface whose Calico programs are attached with TCX or netkit has no clsact qdisc, so tc -s
/// qdisc (the guide's count) shows nothing for it: its drops come from Calico's counters map alone,
/// and the result says so.
/// </summary>
public sealed class DropsCheck : Check
{
    public override string Id => "drops";

    public override string Title => "No packets dropped";

    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        return OnEachDataplane(context, For);
    }

    private CheckResult For(Transport.INodeDataplane node, string name)
    {
        var counters = CounterReader.Read(node)
            .Where(c => c.Category == CounterCategory.Dropped)
            .Select(c => (c.IfIndex, c.Interface, c.Name, Count: (c.Ingress ?? 0) + (c.Egress ?? 0) + (c.Xdp ?? 0)))
            .ToList();
        var drops = counters.Where(d => d.Count > 0).OrderByDescending(d => d.Count).ToList();
        IReadOnlyList<QdiscStatistic> allQdiscs = node.ListQdiscs();
        var qdiscs = allQdiscs.Where(q => q.Kind == "clsact" && q.Drops > 0).ToList();
        string fallback = WithoutClsact(node, allQdiscs, counters, out bool some);
        if (drops.Count == 0 && qdiscs.Count == 0)
        {
            return Result(CheckStatus.Pass, "No Dropped counter and no clsact qdisc drop is above zero" +
                (some ? "; on interfaces attached with TCX or netkit, which have no clsact qdisc, only the counters map counts drops." : "."), name, fallback);
        }

        string top = string.Join(", ", drops.Take(5).Select(d => $"{d.Interface} {d.Name} {d.Count.ToString("N0", CultureInfo.InvariantCulture)}"));
        string tc = string.Join(", ", qdiscs.Select(q => $"{q.Interface} clsact {q.Drops} drops"));
        string evidence = string.Join("; ", new[] { top, tc, fallback }.Where(s => s.Length > 0));
        return Result(CheckStatus.Warning, $"Packets are being dropped: {drops.Sum(d => (decimal)d.Count).ToString("N0", CultureInfo.InvariantCulture)} by Calico's programs{(qdiscs.Count > 0 ? ", and by qdiscs" : string.Empty)}.",
            name, evidence, $"Get-BpfCounter -Node {name} | Where-Object Category -eq Dropped; Get-BpfTraceLog -Node {name} (with Use-FelixBpfDebugLog) shows why");
    }

    /// <summary>
    /// The interfaces that carry Calico programs but no clsact qdisc (attached with TCX or netkit), with
    /// their drops from the counters map; and what the node cannot see. Empty when every Calico program
    /// hangs on a clsact qdisc.
    /// </summary>
    private static string WithoutClsact(Transport.INodeDataplane node, IReadOnlyList<QdiscStatistic> qdiscs,
        IReadOnlyList<(int IfIndex, string Interface, string Name, ulong Count)> counters, out bool some)
    {
        some = false;
        AttachmentListing listing;
        try
        {
            listing = node.ListAttachments();
        }
        catch (Exception ex) when (ex is Interop.BpfException or Transport.NodeCommandException or InvalidDataException or System.Text.Json.JsonException)
        {
            return $"the programs attached to the interfaces could not be listed ({ex.Message.TrimEnd('.')}), so drops on interfaces without a clsact qdisc (TCX, netkit) are only in the counters above";
        }

        var clsact = qdiscs.Where(q => q.Kind == "clsact").Select(q => q.Interface).ToHashSet(StringComparer.Ordinal);
        var bare = listing.Attachments.Where(a => a.IsCalico && !clsact.Contains(a.Interface))
            .GroupBy(a => (a.IfIndex, a.Interface))
            .Select(g => (g.Key.Interface, Kind: g.Aggregate(AttachKind.None, (k, a) => k | a.Kind),
                Drops: counters.Where(c => c.IfIndex == g.Key.IfIndex).Aggregate(0UL, (n, c) => n + c.Count)))
            .ToList();
        var parts = new List<string>();
        if (bare.Count > 0)
        {
            some = true;
            string list = string.Join(", ", bare.Take(5).Select(b => $"{b.Interface} ({b.Kind}) {b.Drops.ToString("N0", CultureInfo.InvariantCulture)}")) + (bare.Count > 5 ? $" and {bare.Count - 5} more" : string.Empty);
            parts.Add($"no clsact qdisc on {bare.Count} interface{(bare.Count == 1 ? string.Empty : "s")} with Calico programs attached with TCX or netkit (bpfAttachType), where tc -s qdisc counts no drops; their drops from the counters map: {list}");
        }

        // Only where Felix's link pins show that programs are attached there unseen: a node whose old
        // bpftool sees no TCX or netkit and has no such pin runs a release that attaches with TC only.
        if (listing.UnseenLinkPins > 0 && listing.UnseenReason is { } why)
        {
            parts.Add(why.TrimEnd('.'));
        }

        return string.Join("; ", parts);
    }
}

/// <summary>11. Capacity per node: conntrack, NAT and route maps above 90 % full.</summary>
public sealed class CapacityCheck : Check
{
    public const double Threshold = 90;
    private static readonly string[] Families = { MapCatalog.ConntrackV4, MapCatalog.ConntrackV6, "cali_v4_nat_fe", "cali_v4_nat_be", "cali_v4_routes", "cali_v6_routes" };

    public override string Id => "capacity";

    public override string Title => "Conntrack, NAT and route maps have room";

    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        return OnEachDataplane(context, For);
    }

    private CheckResult For(Transport.INodeDataplane node, string name)
    {
        var maps = MapInventory.List(node, n => Families.Any(f => n.StartsWith(f, StringComparison.Ordinal)) && !n.EndsWith("_old", StringComparison.Ordinal))
            .Where(m => m.FillPercent is not null).ToList();
        string evidence = string.Join("; ", maps.Select(m => $"{m.Name} {m.Entries}/{m.MaxEntries} ({m.FillPercent}%)"));
        var full = maps.Where(m => m.FillPercent >= Threshold).ToList();
        if (full.Count == 0)
        {
            return Result(CheckStatus.Pass, $"Every conntrack, NAT and route map is below {Threshold} % full.", name, evidence);
        }

        string field = full[0].BaseName switch
        {
            "cali_v4_nat_fe" => "BpfMapSizeNATFrontend",
            "cali_v4_nat_be" => "BpfMapSizeNATBackend",
            "cali_v4_routes" or "cali_v6_routes" => "BpfMapSizeRoute",
            _ => "BpfMapSizeConntrack",
        };
        return Result(CheckStatus.Warning, $"Above {Threshold} % full: {string.Join(", ", full.Select(m => $"{m.Name} {m.FillPercent}%"))}. New entries will fail when it is full.",
            name, evidence, $"Set-FelixBpfConfig -{field} {(full[0].MaxEntries * 2L).ToString(CultureInfo.InvariantCulture)}  (Felix restarts to resize)");
    }
}
