namespace CalicoBpf;

/// <summary>
/// One object of a node's dataplane that two states disagree on (Compare-BpfState): a conntrack flow,
/// a NAT frontend, a route, an IP set member, ... added, removed or changed, with the properties that
/// changed and both objects.
/// </summary>
public sealed class StateDifference
{
    /// <summary>The node of the reference side.</summary>
    public string Node { get; init; } = string.Empty;

    /// <summary>The node of the difference side (the same as Node, unless two nodes are compared).</summary>
    public string DifferenceNode { get; init; } = string.Empty;

    /// <summary>The family: conntrack, nat, routes, ipsets, arp, interfaces, counters, policy, maps, ...</summary>
    public string Family { get; init; } = string.Empty;

    /// <summary>What identifies the object in its family: the flow, the frontend, the prefix, the member.</summary>
    public string Key { get; init; } = string.Empty;

    public StateChange Change { get; init; }

    /// <summary>For Changed: each property that changed, as "Name: reference -> difference".</summary>
    public ValueList<string> Properties { get; init; } = ValueList<string>.Empty;

    /// <summary>The object of the reference side (null when Added).</summary>
    public object? Reference { get; init; }

    /// <summary>The object of the difference side (null when Removed).</summary>
    public object? Difference { get; init; }

    public override string ToString() => $"{Family} {Key}: {Change}" + (Properties.Count > 0 ? " (" + string.Join("; ", Properties) + ")" : string.Empty);
}
