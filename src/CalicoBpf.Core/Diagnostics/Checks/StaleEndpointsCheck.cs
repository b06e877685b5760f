using CalicoBpf.Cluster;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// 14. Intent: no conntrack entry of a pod address that no pod has any more (Calico issue #13570:
/// connections to deleted pods kept), and no NAT backend at such an address (#8650: NAT entries left
/// wrong after a node shutdown). An address counts as a pod's when it is in an IP pool pods use
/// (allowedUses Workload, the default); the node's host and tunnel addresses (the routes Calico marks
/// Host), the nodes' InternalIPs and the services' addresses are not pods.
/// </summary>
public sealed class StaleEndpointsCheck : Check
{
    private const int Shown = 5;

    public override string Id => "stale-endpoints";

    public override string Title => "No conntrack entry or NAT backend points to a pod that is gone";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        // Pools pods take addresses from: allowedUses unset (Workload and Tunnel) or naming Workload; a
        // LoadBalancer pool's addresses are services', a Tunnel-only pool's the nodes' tunnels.
        List<AddressPrefix> pools = context.IpPools
            .Where(p => p["spec"]?["allowedUses"] is not JsonArray uses || uses.Any(u => u?.GetValue<string>() == "Workload"))
            .Select(p => p["spec"]?["cidr"]?.GetValue<string>())
            .Where(c => c is not null)
            .Select(c => AddressPrefix.Parse(c!))
            .ToList();
        if (pools.Count == 0)
        {
            return new[] { Result(CheckStatus.Skipped, "The cluster has no IP pools: which addresses are pods' cannot be told.") };
        }

        // Service addresses (cluster, external and load-balancer IPs) in a pool are no pod's either.
        var pods = new HashSet<IPAddress>(context.Workloads.Pods.SelectMany(p => p.Addresses).Concat(context.Workloads.Services.SelectMany(s => s.Addresses)));
        var nodes = new HashSet<IPAddress>(context.AllNodes.Select(n => IPAddress.TryParse(n.InternalIP, out IPAddress? a) ? a : null).OfType<IPAddress>());
        return PerNode(context, node =>
        {
            context.Require("exec into calico-node");
            return For(context.Dataplane(node), node, pools, pods, nodes);
        });
    }

    private CheckResult For(Transport.INodeDataplane dataplane, CalicoNode node, List<AddressPrefix> pools, HashSet<IPAddress> pods, HashSet<IPAddress> nodes)
    {
        // Host and tunnel addresses (vxlan.calico's, tunl0's: taken from a pool, but no pod's).
        var hosts = new HashSet<IPAddress>(nodes);
        foreach (Route r in RouteMap.Read(dataplane, false).Where(r => r.Flags.HasFlag(RouteFlags.Host)))
        {
            hosts.Add(r.AddressValue);
        }

        bool Gone(IPAddress? a) => a is not null && !pods.Contains(a) && !hosts.Contains(a) && pools.Any(p => p.Matches(a));

        var flows = new Dictionary<IPAddress, int>();
        long entries = 0;
        foreach (ConntrackEntry e in ConntrackReader.Read(dataplane, new ConntrackQuery()))
        {
            entries++;
            foreach (IPAddress a in new[] { e.SourceAddressValue, e.DestinationAddressValue }.Where(Gone).Distinct())
            {
                flows[a] = flows.TryGetValue(a, out int n) ? n + 1 : 1;
            }
        }

        var backends = new List<string>();
        int frontends = 0;
        foreach (NatFrontend f in NatMaps.ReadFrontends(dataplane, new NatQuery()))
        {
            frontends++;
            backends.AddRange(f.Backends.Where(b => Gone(b.AddressValue)).Select(b => $"{f.Frontend} -> {ConntrackText.HostPort(b.AddressValue!, b.Port)}"));
        }

        string pooled = string.Join(", ", pools.Select(p => p.ToString()));
        string evidence = $"{entries} conntrack entries, {frontends} NAT frontends; pools {pooled}; {pods.Count} pod addresses";
        if (backends.Count > 0)
        {
            return Result(CheckStatus.Fail,
                $"{backends.Count} NAT backend(s) send to pod addresses no pod has: {FirstFew(backends)} (Calico issue #8650: NAT entries left after a node shutdown).",
                node.Node, evidence,
                $"Felix writes NAT from the EndpointSlices when it starts: restart calico-node on {node.Node} (kubectl delete pod -n {node.Namespace} {node.Pod}), then Test-CalicoEbpf -Check {Id} -Node {node.Node}");
        }

        if (flows.Count > 0)
        {
            var worst = flows.OrderByDescending(f => f.Value).ThenBy(f => f.Key.ToString(), StringComparer.Ordinal).ToList();
            return Result(CheckStatus.Warning,
                $"{flows.Values.Sum()} conntrack entries are of {flows.Count} pod address(es) no pod has: {FirstFew(worst.Select(w => $"{w.Key} ({w.Value})").ToList())} (Calico issue #13570).",
                node.Node, evidence,
                $"Get-BpfConntrack -Node {node.Node} -Address {string.Join(", ", worst.Take(Shown).Select(w => w.Key))} | Remove-BpfConntrack");
        }

        return Result(CheckStatus.Pass, "Every conntrack entry and NAT backend of a pool address belongs to a pod that exists.", node.Node, evidence);
    }
}
