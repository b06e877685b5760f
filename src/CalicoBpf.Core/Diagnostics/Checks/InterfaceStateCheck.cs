using CalicoBpf.Interop;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// 16. Intent: every entry of the interface-state map (cali_iface) is of an interface the node has,
/// under the same name, and every workload interface has Calico's programs at both hooks. An entry of
/// an interface that is gone, or whose ifindex another interface now has, is state Felix did not
/// remove: a leak like Calico issue #6935 fills the map (1000 entries by default) until new pods get
/// no programs. A workload interface (Felix's interfacePrefix, cali by default: the workload regex of
/// felix/dataplane/linux/bpf_ep_mgr.go) without a Calico program at ingress or egress (TC, TCX or
/// netkit, as Felix attaches them) carries its pod's traffic with no policy, NAT or conntrack.
/// </summary>
public sealed class InterfaceStateCheck : Check
{
    public const string WorkloadPrefix = "cali";

    public override string Id => "interface-state";

    public override string Title => "The interface-state map holds only interfaces the node has; every workload interface has Calico's programs";

    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context) => OnEachDataplane(context, For);

    private CheckResult For(Transport.INodeDataplane node, string name)
    {
        IReadOnlyDictionary<int, NetworkLink> links = node.ListLinks();
        List<InterfaceState> states = InterfaceStateMap.Read(node).ToList();
        var stale = new List<string>();
        foreach (InterfaceState s in states)
        {
            if (!links.TryGetValue(s.IfIndex, out NetworkLink? link))
            {
                stale.Add($"{s.Name} (ifindex {s.IfIndex}: no such interface)");
            }
            else if (!string.Equals(link.Name, s.Name, StringComparison.Ordinal))
            {
                stale.Add($"{s.Name} (ifindex {s.IfIndex} is {link.Name} now)");
            }
        }

        var workloads = links.Values.Where(l => l.Name.StartsWith(WorkloadPrefix, StringComparison.Ordinal)).OrderBy(l => l.Name, StringComparer.Ordinal).ToList();
        AttachmentListing listing = node.ListAttachments();
        var unattached = new List<(string Name, string[] Hooks)>();
        foreach (NetworkLink w in workloads)
        {
            var hooks = listing.Attachments.Where(a => a.IfIndex == w.IfIndex && a.IsCalico).Select(a => a.Hook).ToHashSet();
            string[] missing = new[] { PolicyHook.Ingress, PolicyHook.Egress }.Where(h => !hooks.Contains(h)).Select(h => h.ToString().ToLowerInvariant()).ToArray();
            if (missing.Length > 0)
            {
                unattached.Add((w.Name, missing));
            }
        }

        string unattachedText = FirstFew(unattached.Select(u => $"{u.Name} ({string.Join(", ", u.Hooks)})").ToList());
        // Where the node's bpftool cannot list TCX and netkit and Felix pinned such links, a bare interface may be attached that way.
        bool unsure = unattached.Count > 0 && listing.Unseen != AttachKind.None && listing.UnseenLinkPins > 0;
        bool bare = unattached.Count > 0 && !unsure;

        string evidence = $"{states.Count} interface-state entries, {links.Count} interfaces, {workloads.Count} workload interfaces";
        var problems = new List<string>();
        if (stale.Count > 0)
        {
            problems.Add($"{stale.Count} interface-state entr{(stale.Count == 1 ? "y is" : "ies are")} of interfaces the node does not have: " +
                FirstFew(stale) + " (state Felix did not remove; a leak like Calico issue #6935 fills the map until new pods get no programs)");
        }

        if (bare)
        {
            problems.Add($"{unattached.Count} workload interface(s) without Calico's program at a hook: {unattachedText} (their pods' traffic passes with no policy, NAT or conntrack)");
        }

        if (problems.Count > 0)
        {
            var fixes = new List<string>();
            if (stale.Count > 0)
            {
                fixes.Add($"Felix writes the interface state again when it starts: restart calico-node on {name}; entries that come back are a leak (Calico issue #6935): Get-BpfInterface -Node {name} shows them, and the capacity check how full cali_iface is");
            }

            if (bare)
            {
                fixes.Add($"Felix attaches its programs when a workload interface comes up; its log says why it did not (kubectl logs of calico-node on {name}, lines with \"attach\"), a full cali_iface (capacity check) stops it: restart calico-node on {name}, then Get-BpfInterface -Node {name} -Interface {unattached[0].Name}");
            }

            return Result(CheckStatus.Fail, string.Join("; ", problems) + ".", name, evidence, string.Join("; ", fixes));
        }

        if (unsure)
        {
            return Result(CheckStatus.Warning,
                $"{unattached.Count} workload interface(s) show no Calico TC program ({unattachedText}), but this node's programs cannot all be seen: {listing.UnseenReason}",
                name, evidence, $"Get-BpfInterface on {name} itself, as root, lists TCX and netkit attachments");
        }

        return Result(CheckStatus.Pass, "Every interface-state entry is of an interface the node has, and every workload interface has Calico's programs.", name, evidence);
    }
}
