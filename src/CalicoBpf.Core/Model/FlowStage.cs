namespace CalicoBpf;

/// <summary>
/// One stage of a flow prediction, in the order Calico's programs take them (interface,
/// conntrack, NAT, route, policy): where it runs, what it decided, and the evidence (the map entry
/// or the rule).
/// </summary>
public sealed record FlowStage(string Stage, string Where, string Decision, string Evidence)
{
    public override string ToString() => $"{Stage}: {Decision} ({Evidence})";
}
