using CalicoBpf.Interop;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// 16. Intent: every entry of the interface-state map (cali_iface) is of an interface the node has,
/// under the same name. An entry of an interface that is gone, or whose ifindex another interface now
/// has, is state Felix did not remove: a leak like Calico issue #6935 fills the map (1000 entries by
/// default) until new pods get no programs.
/// </summary>
public sealed class InterfaceStateCheck : Check
{
    public override string Id => "interface-state";

    public override string Title => "The interface-state map holds only interfaces the node has";

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

        string evidence = $"{states.Count} interface-state entries, {links.Count} interfaces";
        if (stale.Count == 0)
        {
            return Result(CheckStatus.Pass, "Every interface-state entry is of an interface the node has.", name, evidence);
        }

        return Result(CheckStatus.Fail,
            $"{stale.Count} interface-state entr{(stale.Count == 1 ? "y is" : "ies are")} of interfaces the node does not have: " +
            FirstFew(stale) +
            " (state Felix did not remove; a leak like Calico issue #6935 fills the map until new pods get no programs).",
            name, evidence,
            $"Felix writes the interface state again when it starts: restart calico-node on {name}; entries that come back are a leak (Calico issue #6935): Get-BpfInterface -Node {name} shows them, and the capacity check how full cali_iface is");
    }
}
