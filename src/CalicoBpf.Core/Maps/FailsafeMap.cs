using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>One failsafe port: traffic on it to (inbound) or from (outbound) this host skips policy on host interfaces.</summary>
/// <param name="Prefix">The peer's addresses it covers (the source for inbound, the destination for outbound).</param>
public sealed record FailsafePort(IpProtocol Protocol, int Port, bool Outbound, AddressPrefix Prefix)
{
    public override string ToString() => $"{(Outbound ? "outbound" : "inbound")} {ConntrackText.Protocol(Protocol).ToLowerInvariant()}:{Port} from {Prefix}";
}

/// <summary>
/// Felix's failsafe ports, cali_v4_fsafes (LPM trie; reference section 2.11, felix/bpf-gpl/failsafe.h
/// at v3.30.7): key prefixlen u32 (32 + the CIDR's length), port u16, ip_proto u8, flags u8 (bit 0:
/// outbound), address (network order); the value is unused. The programs look a packet up with the
/// full prefix, so an entry matches its exact (protocol, port, direction) and any peer in its CIDR.
/// </summary>
public static class FailsafeMap
{
    public const string V4 = "cali_v4_fsafes";

    private const int KeySize = 12;

    /// <summary>Port, protocol and flags: the bits before the address.</summary>
    private const int FixedBits = 32;

    public static byte[] EncodeKey(IpProtocol protocol, int port, bool outbound, AddressPrefix prefix)
    {
        byte[] key = new byte[KeySize];
        BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)(FixedBits + prefix.PrefixLength));
        BinaryPrimitives.WriteUInt16LittleEndian(key.AsSpan(4), (ushort)port);
        key[6] = (byte)protocol;
        key[7] = outbound ? (byte)1 : (byte)0;
        // Felix masks the address to the CIDR (felix/bpf/failsafes/failsafes.go).
        byte[] a = prefix.Address.GetAddressBytes();
        for (int bit = prefix.PrefixLength; bit < 32; bit++)
        {
            a[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }

        a.CopyTo(key, 8);
        return key;
    }

    public static FailsafePort Decode(ReadOnlySpan<byte> key)
    {
        int length = Math.Clamp((int)BinaryPrimitives.ReadUInt32LittleEndian(key) - FixedBits, 0, 32);
        var address = new IPAddress(key.Slice(8, 4));
        return new FailsafePort((IpProtocol)key[6], BinaryPrimitives.ReadUInt16LittleEndian(key[4..]), (key[7] & 1) != 0,
            AddressPrefix.Parse($"{address}/{length}"));
    }

    /// <summary>Every IPv4 failsafe entry; empty when the node has no failsafe map.</summary>
    public static IReadOnlyList<FailsafePort> Read(INodeMaps node, IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        if (MapReading.TryFind(node, V4) is not { } pin)
        {
            return Array.Empty<FailsafePort>();
        }

        return MapReading.Decode<FailsafePort>(node, pin, d =>
        {
            MapReading.ExpectSizes(pin, d, KeySize, 4, "12-byte keys and 4-byte values");
            return (key, value) => Decode(key);
        }, reporter, cancellationToken).ToList();
    }
}
