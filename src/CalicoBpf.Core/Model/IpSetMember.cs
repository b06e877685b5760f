namespace CalicoBpf;

/// <summary>One member of one Calico IP set.</summary>
public sealed class IpSetMember
{
    public string Node { get; init; } = string.Empty;
    public ulong SetId { get; init; }
    /// <summary>The set id as calico-bpf prints it: Go's %#x, 0x and the hex digits without leading zeros (0x7).</summary>
    public string SetIdText => "0x" + SetId.ToString("x", System.Globalization.CultureInfo.InvariantCulture);
    public string Address => AddressValue.ToString();
    /// <summary>Address typed; PowerShell shows it as the hidden property AddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress AddressValue { get; init; } = IPAddress.Any;
    public int PrefixLength { get; init; }
    public string Cidr => AddressValue + "/" + PrefixLength;
    /// <summary>Named-port members: the port; null for CIDR members.</summary>
    public int? Port { get; init; }
    public IpProtocol? Protocol { get; init; }
    /// <summary>calico-bpf's member text: CIDR, or addr:port (proto n), IPv6 without brackets as its %s:%d prints it (fd00::5:8080).</summary>
    public string Member => Port is null ? Cidr : $"{ConntrackText.Endpoint(AddressValue, Port.Value)} (proto {(byte)Protocol!.Value})";
}
