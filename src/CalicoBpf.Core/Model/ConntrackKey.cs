namespace CalicoBpf;

/// <summary>The 5-tuple a conntrack entry is keyed by, in the map's A/B order.</summary>
public sealed record ConntrackKey(IpProtocol Protocol, IPAddress AddressA, int PortA, IPAddress AddressB, int PortB)
{
    public override string ToString() =>
        $"{ConntrackText.Protocol(Protocol)} {ConntrackText.Endpoint(AddressA, PortA)} <-> {ConntrackText.Endpoint(AddressB, PortB)}";

    /// <summary>The end that is not (address, port): the key is sorted, so either side may be the client.</summary>
    public (IPAddress Address, int Port) Other(IPAddress address, int port) =>
        AddressA.Equals(address) && PortA == port ? (AddressB, PortB) : (AddressA, PortA);
}
