using System.Net;
using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Simulation;

namespace CalicoBpf.TestCluster;

/// <summary>
/// Felix's eBPF kube-proxy replacement as the test cluster's nodes run it (scenario programServices):
/// writes one node's NAT frontend and backend maps from the scenario's Services and the endpoints of
/// their EndpointSlices, by felix/bpf/proxy at v3.30.7 (74485ea4): syncer.go apply (599-680),
/// updateService (748-798), applyDerived (524-576), writeSvc (910-945), writeLBSrcRangeSvcNATKeys
/// (880-908) and kube-proxy.go run (126-131). Written from those sources apart from the module's
/// <c>ServiceIntent</c>, which the services check compares against what this writes.
/// Ids are given from 0 in the order the services are listed (default/kubernetes first), port by
/// port, as a freshly started Felix gives them one by one (newSvcID); Felix's own order is its map's.
/// </summary>
internal static class FelixProxy
{
    public static void Program(SimulatedDataplane dataplane, ClusterScenario scenario, ClusterScenario.NodeSpec node)
    {
        BpfMap frontends = dataplane.Map("cali_v4_nat_fe3");
        BpfMap backends = dataplane.Map("cali_v4_nat_be");
        // kube-proxy.go run: the node's IPv4 addresses, then the wildcard podNPIP 255.255.255.255.
        var nodePortAddresses = new List<IPAddress>();
        if (IPAddress.TryParse(node.Address, out IPAddress? host))
        {
            nodePortAddresses.Add(host);
        }

        nodePortAddresses.Add(IPAddress.Broadcast);
        var lost = new HashSet<string>(node.NatLost, StringComparer.Ordinal);
        void Write(IPAddress address, int port, IpProtocol protocol, AddressPrefix? source, byte[] value)
        {
            // Fault knob: frontends this node's Felix lost (a sync that did not finish).
            if (source is null && lost.Contains($"{address}:{port}/{protocol.ToString().ToUpperInvariant()}"))
            {
                return;
            }

            frontends.Update(NatMaps.EncodeFrontendKey(address, port, protocol, source), value);
        }

        uint nextId = 0;
        foreach ((ClusterScenario.ServiceSpec svc, List<ClusterScenario.PodSpec> pods) in scenario.ServicesWithEndpoints())
        {
            if (!IPAddress.TryParse(svc.ClusterIp, out IPAddress? clusterIp))
            {
                continue;
            }

            bool internalLocal = svc.InternalTrafficPolicy == "Local";
            // The proxy's ExternalPolicyLocal: only on a service reachable from outside.
            bool externalLocal = svc.ExternalTrafficPolicy == "Local" && (svc.Type is "NodePort" or "LoadBalancer" || svc.ExternalIps.Count > 0);
            uint affinity = svc.SessionAffinity == "ClientIP" ? (uint)(svc.AffinityTimeoutSeconds > 0 ? svc.AffinityTimeoutSeconds : 10800) : 0;
            foreach (ClusterScenario.PortSpec port in svc.Ports)
            {
                uint id = nextId++;
                IpProtocol protocol = port.Protocol switch { "UDP" => IpProtocol.Udp, "SCTP" => IpProtocol.Sctp, _ => IpProtocol.Tcp };
                int target = port.TargetPort == 0 ? port.Port : port.TargetPort;

                // updateService: ready endpoints only ("only write Ready pods to backend"), the node's own first.
                var ready = pods.Where(p => p.Ready && !p.Terminating && IPAddress.TryParse(p.Ip, out _)).ToList();
                bool Local(ClusterScenario.PodSpec p) => p.Name.Length > 0 && p.Node == node.Name;
                var ordered = ready.Where(Local).Concat(ready.Where(p => !Local(p))).ToList();
                uint local = (uint)ready.Count(Local);
                for (int i = 0; i < ordered.Count; i++)
                {
                    backends.Update(NatMaps.EncodeIdOrdinal(id, i), NatMaps.EncodeDestination(IPAddress.Parse(ordered[i].Ip), target));
                }

                byte[] Value(NatFrontendFlags flags) => NatMaps.EncodeFrontendValue(id, (uint)ordered.Count, local, affinity, flags);

                // The ClusterIP frontend carries the internal policy only.
                Write(clusterIp, port.Port, protocol, null, Value(internalLocal ? NatFrontendFlags.InternalLocal : NatFrontendFlags.None));

                // applyDerived: NodePort, LoadBalancer (and NodePortRemote) frontends take both policies; ExternalIP ones neither.
                NatFrontendFlags derived = (internalLocal ? NatFrontendFlags.InternalLocal : NatFrontendFlags.None)
                    | (externalLocal ? NatFrontendFlags.ExternalLocal : NatFrontendFlags.None);
                void External(IPAddress address, NatFrontendFlags flags)
                {
                    Write(address, port.Port, protocol, null, Value(flags));
                    if (svc.LoadBalancerSourceRanges.Count == 0)
                    {
                        return;
                    }

                    // writeLBSrcRangeSvcNATKeys: one entry per IPv4 range, and the plain key drops everyone else.
                    foreach (AddressPrefix range in svc.LoadBalancerSourceRanges.Select(AddressPrefix.Parse).Where(r => !r.IsIPv6))
                    {
                        Write(address, port.Port, protocol, range, Value(flags));
                    }

                    Write(address, port.Port, protocol, null, NatMaps.EncodeFrontendValue(id, NatMaps.DropCount, 0, 0, NatFrontendFlags.None));
                }

                if (IPAddress.TryParse(svc.LoadBalancerIp, out IPAddress? lb))
                {
                    External(lb, derived);
                }

                foreach (string ext in svc.ExternalIps)
                {
                    External(IPAddress.Parse(ext), NatFrontendFlags.None);
                }

                if (port.NodePort > 0)
                {
                    foreach (IPAddress a in nodePortAddresses)
                    {
                        // syncer.go 654: with internalTrafficPolicy Local the wildcard is not programmed.
                        if (internalLocal && a.Equals(IPAddress.Broadcast))
                        {
                            continue;
                        }

                        Write(a, port.NodePort, protocol, null, Value(derived));
                    }
                }
            }
        }
    }
}
