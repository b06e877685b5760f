namespace CalicoBpf.Maps;

/// <summary>
/// Address prefixes prepared for matching raw network-order addresses many times (a filter over a
/// whole map): single IPv4 addresses in a hash set and IPv4 prefixes as (network, mask) words, so a
/// lookup costs a few integer operations whatever the number of addresses (a namespace's pods are
/// thousands of /32s); IPv6 prefixes through <see cref="AddressPrefix.Matches(ReadOnlySpan{byte})"/>.
/// </summary>
public sealed class AddressSet
{
    // A few addresses (the usual -Address) are compared in a row; many (a namespace's pods) through the hash set.
    private const int FewHosts = 8;
    private readonly HashSet<uint> _hostsV4 = new();
    private readonly uint[]? _fewHostsV4;
    private readonly (uint Network, uint Mask)[] _prefixesV4;
    private readonly AddressPrefix[] _v6;

    public AddressSet(IEnumerable<AddressPrefix> prefixes)
    {
        ArgumentNullException.ThrowIfNull(prefixes);
        var v4 = new List<(uint, uint)>();
        var v6 = new List<AddressPrefix>();
        Span<byte> b = stackalloc byte[16];
        foreach (AddressPrefix p in prefixes)
        {
            Count++;
            if (p.IsIPv6)
            {
                v6.Add(p);
                continue;
            }

            p.Address.TryWriteBytes(b, out _);
            uint network = BinaryPrimitives.ReadUInt32BigEndian(b);
            if (p.PrefixLength == 32)
            {
                _hostsV4.Add(network);
                continue;
            }

            uint mask = p.PrefixLength == 0 ? 0u : uint.MaxValue << (32 - p.PrefixLength);
            v4.Add((network & mask, mask));
        }

        _fewHostsV4 = _hostsV4.Count <= FewHosts ? _hostsV4.ToArray() : null;
        _prefixesV4 = v4.ToArray();
        _v6 = v6.ToArray();
    }

    /// <summary>How many prefixes the set was made of (0: it matches nothing).</summary>
    public int Count { get; }

    /// <summary>True when the raw address (4 or 16 bytes, network order) lies inside one of the prefixes.</summary>
    public bool Contains(ReadOnlySpan<byte> address)
    {
        if (address.Length == 4)
        {
            uint a = BinaryPrimitives.ReadUInt32BigEndian(address);
            if (_fewHostsV4 is { } few ? Array.IndexOf(few, a) >= 0 : _hostsV4.Contains(a))
            {
                return true;
            }

            foreach ((uint network, uint mask) in _prefixesV4)
            {
                if ((a & mask) == network)
                {
                    return true;
                }
            }

            return false;
        }

        foreach (AddressPrefix p in _v6)
        {
            if (p.Matches(address))
            {
                return true;
            }
        }

        return false;
    }
}
