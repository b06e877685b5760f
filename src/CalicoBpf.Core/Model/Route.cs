namespace CalicoBpf;

/// <summary>A route of Calico's routing map.</summary>
public sealed class Route
{
    public string Node { get; init; } = string.Empty;
    public string Cidr { get; init; } = string.Empty;
    public string Address => AddressValue.ToString();
    /// <summary>Address typed; PowerShell shows it as the hidden property AddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress AddressValue { get; init; } = IPAddress.Any;
    public int PrefixLength { get; init; }
    public RouteFlags Flags { get; init; }
    /// <summary>calico-bpf's description words: "local workload in-pool idx 12", "remote host", ...</summary>
    public string Description { get; init; } = string.Empty;
    /// <summary>Remote workload routes: the node the workload lives on.</summary>
    public string? NextHop => NextHopValue?.ToString();
    /// <summary>NextHop typed; PowerShell shows it as the hidden property NextHopValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress? NextHopValue { get; init; }
    /// <summary>Local workload routes: the workload interface.</summary>
    public int? IfIndex { get; init; }
    public string? Interface { get; init; }
}
