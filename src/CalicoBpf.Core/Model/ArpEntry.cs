namespace CalicoBpf;

/// <summary>A neighbour Calico learnt from a tunnel packet (used to answer NodePort forwarding).</summary>
public sealed class ArpEntry
{
    public string Node { get; init; } = string.Empty;
    public string Address => AddressValue.ToString();
    /// <summary>Address typed; PowerShell shows it as the hidden property AddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress AddressValue { get; init; } = IPAddress.Any;
    public int IfIndex { get; init; }
    public string Interface { get; init; } = string.Empty;
    /// <summary>Our interface's MAC (the received packet's destination).</summary>
    public string SourceMac { get; init; } = string.Empty;
    /// <summary>The remote next hop's MAC (the received packet's source).</summary>
    public string DestinationMac { get; init; } = string.Empty;
}
