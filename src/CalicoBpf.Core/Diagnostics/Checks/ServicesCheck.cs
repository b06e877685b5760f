using System.Net.Sockets;
using CalicoBpf.Cluster;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// 13. Intent: each node's NAT maps hold what Felix writes for the cluster's Services and
/// EndpointSlices (<see cref="ServiceIntent"/>): every ClusterIP, load-balancer IP, external IP and
/// node port (on the node's address and the wildcard) has its frontend; its backends are the ready
/// endpoints, the node's own first, with the flags its traffic policies and affinity give; all of a
/// service port's frontends share one id and no id is shared by two services (Calico issue #13279:
/// each overwrites the other's backends); a frontend of no service is left over.
/// </summary>
public sealed class ServicesCheck : Check
{
    public override string Id => "services";

    public override string Title => "Every Service has its NAT frontends and ready backends, and no NAT id is shared";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        // The Services and EndpointSlices are read into service ports once; each node only says which endpoints are its own.
        var cluster = Families.ToDictionary(f => f, f => ServiceIntent.FromKubernetes(context.Services, context.EndpointSlices, f));
        return PerNode(context, node =>
        {
            context.Require("exec into calico-node");
            return For(context.Dataplane(node), node, cluster);
        });
    }

    private const NatFrontendFlags Policy = NatFrontendFlags.ExternalLocal | NatFrontendFlags.InternalLocal;

    private static readonly AddressFamily[] Families = { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 };

    private CheckResult For(Transport.INodeDataplane dataplane, CalicoNode node, Dictionary<AddressFamily, IReadOnlyList<ServicePortState>> cluster)
    {
        var wrong = new List<string>();
        var shared = new List<string>();
        var stale = new List<string>();
        int ports = 0, frontends = 0;
        var hosts = IPAddress.TryParse(node.InternalIP, out IPAddress? host) ? new[] { host } : Array.Empty<IPAddress>();
        foreach (AddressFamily family in Families)
        {
            bool v6 = family == AddressFamily.InterNetworkV6;
            IReadOnlyList<ServicePortState> intents = ServiceIntent.OnNode(cluster[family], node.Node, node.CalicoRelease?.Release);
            if (v6 && (intents.Count == 0 || MapReading.TryFind(dataplane, NatMaps.FrontendV6) is null))
            {
                if (intents.Count > 0)
                {
                    wrong.Add($"{intents.Count} IPv6 service port(s) but no IPv6 NAT map is pinned (IPv6 not enabled in Calico on the node?)");
                }

                continue;
            }

            ports += intents.Count;
            List<NatFrontend> map = NatMaps.ReadFrontends(dataplane, new NatQuery { IPv6 = v6 }).ToList();
            frontends += map.Count;
            var byKey = map.GroupBy(f => (f.AddressValue, f.Port, f.Protocol, f.SourceCidr)).ToDictionary(g => g.Key, g => g.First());
            var owners = new Dictionary<uint, SortedSet<string>>();
            var matched = new HashSet<NatFrontend>(ReferenceEqualityComparer.Instance);
            IReadOnlyList<IPAddress> nodePortAddresses = ServiceIntent.NodePortAddresses(hosts, family);
            foreach (ServicePortState s in intents)
            {
                IReadOnlyList<IntentEndpoint> backends = ServiceIntent.Backends(s);
                int local = ServiceIntent.LocalCount(s);
                var ids = new SortedSet<uint>();
                bool backendsCompared = false;
                foreach (ExpectedFrontend e in ServiceIntent.Frontends(s, nodePortAddresses))
                {
                    string where = $"{s.Display} {e.Kind} {e.Frontend}";
                    if (!byKey.TryGetValue((e.Address, e.Port, s.Protocol, e.Source?.ToString()), out NatFrontend? f))
                    {
                        wrong.Add($"{where}: no frontend");
                        continue;
                    }

                    matched.Add(f);
                    if (e.Drop != f.IsDropEntry)
                    {
                        wrong.Add(e.Drop ? $"{where}: not the drop entry its source ranges make" : $"{where}: drops every client");
                        continue;
                    }

                    if (e.Drop)
                    {
                        continue;
                    }

                    ids.Add(f.ServiceId);
                    Own(owners, f.ServiceId, s.Display);
                    wrong.AddRange(Values(where, f, e, s, backends.Count, local));
                    if (!backendsCompared)
                    {
                        backendsCompared = true;
                        wrong.AddRange(Backends(where, f, s, backends, local));
                    }
                }

                if (ids.Count > 1)
                {
                    wrong.Add($"{s.Display}: its frontends have ids {string.Join(", ", ids)}, where Felix gives them one");
                }

                if (s.InternalLocal && s.NodePort > 0)
                {
                    // NodePortRemote (syncer.go expandNodePorts): the node port on each other node with
                    // endpoints, an id of its own, backends of that node; expected only when routes say so.
                    foreach (NatFrontend f in map.Where(f => f.Port == s.NodePort && f.Protocol == s.Protocol && !matched.Contains(f) && !f.IsNodePortWildcard))
                    {
                        matched.Add(f);
                        Own(owners, f.ServiceId, s.Display);
                    }
                }
            }

            shared.AddRange(owners.Where(o => o.Value.Count > 1).OrderBy(o => o.Key)
                .Select(o => $"id {o.Key} by {string.Join(" and ", o.Value)}"));
            stale.AddRange(map.Where(f => !matched.Contains(f))
                .Select(f => $"{f.Frontend}/{f.Protocol.ToString().ToUpperInvariant()}{(f.SourceCidr is null ? string.Empty : " src " + f.SourceCidr)} (id {f.ServiceId})"));
        }

        string evidence = $"{ports} service ports, {frontends} NAT frontends";
        string restart = $"restart calico-node on {node.Node} (kubectl delete pod -n {node.Namespace} {node.Pod}), then Test-CalicoEbpf -Check {Id} -Node {node.Node}";
        if (shared.Count > 0)
        {
            return Result(CheckStatus.Fail,
                $"{shared.Count} NAT id(s) shared by two services, whose backends each overwrites on every sync: {FirstFew(shared)} (Calico issue #13279)" +
                (wrong.Count > 0 ? $"; also {FirstFew(wrong, 3)}." : "."),
                node.Node, evidence,
                "Fixed by Calico PR #13388 (v3.34, and in v3.31 and v3.32 after v3.31.7 and v3.32.1): upgrade calico-node. Before it the shared id survives restarts " +
                $"until the pinned NAT maps (cali_v4_nat_fe3, cali_v4_nat_be) are removed, and {node.Node}'s service connections break until Felix writes them anew: remove them, then {restart}");
        }

        if (wrong.Count > 0)
        {
            return Result(CheckStatus.Fail,
                $"{wrong.Count} difference(s) between the Services and EndpointSlices and NAT: {FirstFew(wrong)}.",
                node.Node, evidence,
                $"Felix rewrites NAT from the Services and EndpointSlices on each sync; a difference that lasts beyond bpfKubeProxyMinSyncPeriod is state it lost: {restart}");
        }

        if (stale.Count > 0)
        {
            return Result(CheckStatus.Warning,
                $"{stale.Count} NAT frontend(s) of no Service: {FirstFew(stale)} (left after their Service was deleted; they still answer).",
                node.Node, evidence,
                $"Get-BpfNat -Node {node.Node} -Resolve shows them; Felix deletes them when it resyncs: {restart}");
        }

        return Result(CheckStatus.Pass, "Every Service has its frontends with its ready endpoints as backends, and each NAT id is one service's.", node.Node, evidence);
    }

    private static void Own(Dictionary<uint, SortedSet<string>> owners, uint id, string service)
    {
        if (!owners.TryGetValue(id, out SortedSet<string>? set))
        {
            owners[id] = set = new SortedSet<string>(StringComparer.Ordinal);
        }

        set.Add(service);
    }

    /// <summary>Count, local count, flags and affinity of one frontend against the service port.</summary>
    private static IEnumerable<string> Values(string where, NatFrontend f, ExpectedFrontend e, ServicePortState s, int count, int local)
    {
        if (s.Filtered is null && (f.BackendCount != count || f.LocalBackendCount != local))
        {
            yield return $"{where}: {f.BackendCount} backends ({f.LocalBackendCount} local) where the node has {count} ready endpoints ({local} local)";
        }

        if ((f.Flags & Policy) != e.PolicyFlags)
        {
            yield return $"{where}: flags {Flags(f.Flags & Policy)} where its traffic policies give {Flags(e.PolicyFlags)}";
        }

        if ((uint)f.AffinityTimeoutValue.TotalSeconds != s.AffinitySeconds)
        {
            yield return $"{where}: affinity {(uint)f.AffinityTimeoutValue.TotalSeconds} s where sessionAffinity gives {s.AffinitySeconds} s";
        }
    }

    /// <summary>The backends of a service port's id against its ready endpoints (a subset when the node may rightly filter them).</summary>
    private static IEnumerable<string> Backends(string where, NatFrontend f, ServicePortState s, IReadOnlyList<IntentEndpoint> ready, int local)
    {
        if (f.MissingBackendCount > 0)
        {
            yield return $"{where}: {f.MissingBackendCount} of its {f.BackendCount} backend ordinals are not in the backend map";
        }

        var want = ready.Select(e => (e.Address, e.Port)).ToHashSet();
        var have = f.Backends.Where(b => !b.Missing && b.AddressValue is not null).Select(b => (Address: b.AddressValue!, b.Port)).ToList();
        var extra = have.Where(b => !want.Contains(b)).Select(b => ConntrackText.HostPort(b.Address, b.Port)).Distinct().ToList();
        if (extra.Count > 0)
        {
            yield return $"{where}: sends to {FirstFew(extra, 3)}, not a ready endpoint";
        }

        if (s.Filtered is not null)
        {
            yield break;
        }

        var lacking = want.Where(w => !have.Contains(w)).Select(w => ConntrackText.HostPort(w.Address, w.Port)).ToList();
        if (lacking.Count > 0)
        {
            yield return $"{where}: lacks ready endpoint(s) {FirstFew(lacking, 3)}";
        }

        var locals = ready.Where(e => e.Local).Select(e => (e.Address, e.Port)).ToHashSet();
        var notFirst = f.Backends.Where(b => b.Ordinal < f.LocalBackendCount && !b.Missing && b.AddressValue is not null && !locals.Contains((b.AddressValue!, b.Port)))
            .Select(b => $"{ConntrackText.HostPort(b.AddressValue!, b.Port)} (ordinal {b.Ordinal})").ToList();
        if (lacking.Count == 0 && extra.Count == 0 && f.LocalBackendCount == local && notFirst.Count > 0)
        {
            yield return $"{where}: {FirstFew(notFirst, 3)} among the first {local} backends, which are the node's own";
        }
    }

    private static string Flags(NatFrontendFlags flags) => flags == NatFrontendFlags.None ? "none" : flags.ToString();
}
