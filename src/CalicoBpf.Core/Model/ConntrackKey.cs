namespace CalicoBpf;

/// <summary>The 5-tuple a conntrack entry is keyed by, in the map's A/B order.</summary>
public sealed record ConntrackKey(IpProtocol Protocol, IPAddress AddressAValue, int PortA, IPAddress AddressBValue, int PortB)
{
    // Declared here so that they keep the key's order and the addresses are text (JSON, CSV).
    public IpProtocol Protocol { get; init; } = Protocol;

    public string AddressA => AddressAValue.ToString();

    /// <summary>AddressA typed; PowerShell shows it as the hidden property AddressAValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress AddressAValue { get; init; } = AddressAValue;

    public int PortA { get; init; } = PortA;

    public string AddressB => AddressBValue.ToString();

    /// <summary>AddressB typed; PowerShell shows it as the hidden property AddressBValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress AddressBValue { get; init; } = AddressBValue;

    public int PortB { get; init; } = PortB;

    public override string ToString() =>
        $"{ConntrackText.Protocol(Protocol)} {ConntrackText.Endpoint(AddressAValue, PortA)} <-> {ConntrackText.Endpoint(AddressBValue, PortB)}";

    /// <summary>The end that is not (address, port): the key is sorted, so either side may be the client.</summary>
    public (IPAddress Address, int Port) Other(IPAddress address, int port) =>
        AddressAValue.Equals(address) && PortA == port ? (AddressBValue, PortB) : (AddressAValue, PortA);
}
