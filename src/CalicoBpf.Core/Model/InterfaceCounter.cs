namespace CalicoBpf;

/// <summary>
/// One Calico counter of one interface, summed over CPUs for each hook. A hook with no entry in
/// the map (no program attached there) is null, where calico-bpf prints N/A.
/// </summary>
public sealed class InterfaceCounter
{
    public string Node { get; init; } = string.Empty;
    /// <summary>The interface name, or "ifindex N" when no interface has that index any more.</summary>
    public string Interface { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    public CounterCategory Category { get; init; }
    /// <summary>The TYPE text calico-bpf counters dump prints ("by policy", "malformed IP packets").</summary>
    public string Name { get; init; } = string.Empty;
    /// <summary>Calico's identifier of the counter (DroppedByPolicy, ...).</summary>
    public string Id { get; init; } = string.Empty;
    /// <summary>Position in the counter array.</summary>
    public int Index { get; init; }
    /// <summary>TC ingress hook: packets the interface received.</summary>
    public ulong? Ingress { get; init; }
    /// <summary>TC egress hook: packets the interface transmitted.</summary>
    public ulong? Egress { get; init; }
    /// <summary>XDP hook.</summary>
    public ulong? Xdp { get; init; }

    public override string ToString() => $"{Interface} {Category} {Name}: ingress {Text(Ingress)}, egress {Text(Egress)}, xdp {Text(Xdp)}";

    private static string Text(ulong? v) => v?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "N/A";
}
