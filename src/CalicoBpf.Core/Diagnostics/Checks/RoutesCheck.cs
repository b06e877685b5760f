using CalicoBpf.Cluster;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// 15. Intent: each node routes every pod of the cluster where it is (the node's own pods to a local
/// workload route, another node's pods through a workload route whose next hop is that node), every
/// other node's IPAM block (a confirmed host BlockAffinity) by a workload route of exactly that CIDR to
/// that node (Felix's route of a remote block, felix/calc/l3_route_resolver.go), pods or not, and no
/// route leads to a node that is gone (a remote route whose next hop, or a remote host route whose
/// address, no node of the cluster has; a remote tunneled host route is another node's VXLAN, IPIP or
/// WireGuard address, not an InternalIP, and is not judged). The route a pod takes is the longest prefix of the node's
/// routes map that holds its address, as the dataplane looks it up. IPv4; pods on nodes without
/// calico-node are not Calico's to route.
/// </summary>
public sealed class RoutesCheck : Check
{
    public override string Id => "routes";

    public override string Title => "Every pod is routed to its node; no route leads to a node that is gone";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        IReadOnlyList<CalicoNode> all = context.AllNodes;
        var byAddress = all.Where(n => IPAddress.TryParse(n.InternalIP, out _)).GroupBy(n => IPAddress.Parse(n.InternalIP)).ToDictionary(g => g.Key, g => g.First().Node);
        var calico = new HashSet<string>(all.Where(n => n.HasCalicoNode).Select(n => n.Node), StringComparer.Ordinal);
        var pods = context.Workloads.Pods
            .Where(p => calico.Contains(p.Node))
            .SelectMany(p => p.Addresses.Where(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork).Select(a => (Pod: p, Address: a)))
            .ToList();
        var blocks = context.BlockAffinities
            .Select(b => b["spec"])
            .Where(s => s?["state"]?.GetValue<string>() == "confirmed" && s["deleted"]?.GetValue<string>() != "true"
                && (s["type"]?.GetValue<string>() ?? "host") is "host" or "" && calico.Contains(s["node"]?.GetValue<string>() ?? string.Empty))
            .Select(s => (Prefix: AddressPrefix.Parse(s!["cidr"]!.GetValue<string>()), Node: s["node"]!.GetValue<string>()))
            .Where(b => !b.Prefix.IsIPv6)
            .ToList();
        return PerNode(context, node =>
        {
            context.Require("exec into calico-node");
            return For(context.Dataplane(node), node, pods, blocks, byAddress);
        });
    }

    private CheckResult For(Transport.INodeDataplane dataplane, CalicoNode node, List<(WorkloadPod Pod, IPAddress Address)> pods,
        List<(AddressPrefix Prefix, string Node)> blocks, Dictionary<IPAddress, string> nodes)
    {
        List<(Route Route, AddressPrefix Prefix)> routes = RouteMap.Read(dataplane, false).Select(r => (r, AddressPrefix.Parse(r.Cidr))).ToList();
        // The node a route's next hop is (null: none has it), and how a route to the wrong one reads.
        string? NextNode(Route r) => r.NextHopValue is { } hop && nodes.TryGetValue(hop, out string? n) ? n : null;
        string Via(Route r) => $"routed via {r.NextHop ?? "no next hop"} ({NextNode(r) ?? "no node"}";
        var unrouted = new List<string>();
        foreach ((WorkloadPod pod, IPAddress address) in pods)
        {
            Route? best = routes.Where(r => r.Prefix.Matches(address)).OrderByDescending(r => r.Prefix.PrefixLength).Select(r => r.Route).FirstOrDefault();
            string where = $"{pod.FullName} {address} on {pod.Node}";
            bool local = pod.Node == node.Node;
            string? wrong = best is null ? "no route"
                : !best.Flags.HasFlag(RouteFlags.Workload) ? $"routed as {best.Description} ({best.Cidr})"
                : local && !best.Flags.HasFlag(RouteFlags.Local) ? $"routed away ({best.Cidr} {best.Description})"
                : !local && best.Flags.HasFlag(RouteFlags.Local) ? $"routed here ({best.Cidr} {best.Description})"
                : !local && NextNode(best) != pod.Node ? $"{Via(best)}, {best.Cidr})"
                : null;
            if (wrong is not null)
            {
                unrouted.Add($"{where}: {wrong}");
            }
        }

        var unroutedBlocks = new List<string>();
        foreach ((AddressPrefix block, string owner) in blocks.Where(b => b.Node != node.Node))
        {
            Route? r = routes.Where(x => x.Prefix.PrefixLength == block.PrefixLength && x.Prefix.Matches(block.Address)).Select(x => x.Route).FirstOrDefault();
            string? wrong = r is null ? "no route"
                : !r.Flags.HasFlag(RouteFlags.Workload) || r.Flags.HasFlag(RouteFlags.Local) ? $"routed as {r.Description}"
                : NextNode(r) != owner ? Via(r) + ")"
                : null;
            if (wrong is not null)
            {
                unroutedBlocks.Add($"{block} of {owner}: {wrong}");
            }
        }

        var gone = new List<string>();
        foreach ((Route r, _) in routes.Where(x => !x.Route.Flags.HasFlag(RouteFlags.Local)))
        {
            if (r.Flags.HasFlag(RouteFlags.Workload) && r.NextHopValue is { } hop && !nodes.ContainsKey(hop))
            {
                gone.Add($"{r.Cidr} via {hop}");
            }
            else if (r.Flags.HasFlag(RouteFlags.Host) && !r.Flags.HasFlag(RouteFlags.Tunneled) && r.PrefixLength == 32 && !nodes.ContainsKey(r.AddressValue))
            {
                gone.Add($"{r.Cidr} (remote host)");
            }
        }

        string evidence = $"{routes.Count} routes; {pods.Count} pods on {pods.Select(p => p.Pod.Node).Distinct().Count()} nodes; {blocks.Count} IPAM blocks";
        if (unrouted.Count == 0 && unroutedBlocks.Count == 0 && gone.Count == 0)
        {
            return Result(CheckStatus.Pass, "Every pod and IPAM block is routed to its node, and every route to another node leads to a node of the cluster.", node.Node, evidence);
        }

        var parts = new List<string>();
        if (unrouted.Count > 0)
        {
            parts.Add($"{unrouted.Count} pod(s) not routed to their node: {FirstFew(unrouted)}");
        }

        if (unroutedBlocks.Count > 0)
        {
            parts.Add($"{unroutedBlocks.Count} IPAM block(s) of other nodes not routed to them: {FirstFew(unroutedBlocks)}");
        }

        if (gone.Count > 0)
        {
            parts.Add($"{gone.Count} route(s) to nodes that are gone (no node has the address): {FirstFew(gone)}");
        }

        return Result(CheckStatus.Fail, string.Join("; ", parts) + ".", node.Node, evidence,
            $"Felix writes the routes from the cluster's nodes and IPAM blocks: restart calico-node on {node.Node} (kubectl delete pod -n {node.Namespace} {node.Pod}); " +
            "routes that stay to a node that is gone follow IPAM blocks still affine to it (calicoctl ipam check)");
    }
}
