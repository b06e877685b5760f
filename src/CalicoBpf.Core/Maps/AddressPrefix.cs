using System.Net.Sockets;

namespace CalicoBpf.Maps;

/// <summary>An address or CIDR that matches raw network-order address bytes without allocating.</summary>
public sealed class AddressPrefix
{
    private readonly byte[] _bytes;

    private AddressPrefix(byte[] bytes, int prefixLength)
    {
        _bytes = bytes;
        PrefixLength = prefixLength;
    }

    public int PrefixLength { get; }

    public int AddressLength => _bytes.Length;

    public bool IsIPv6 => _bytes.Length == 16;

    /// <summary>The network address (an IPv4-mapped IPv6 address given is its IPv4 address).</summary>
    public IPAddress Address => new(_bytes);

    /// <summary>Parses "10.65.0.2", "10.65.0.0/16" or an IPv6 form. Throws FormatException with the reason.</summary>
    public static AddressPrefix Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim();
        int slash = s.IndexOf('/');
        string addrText = slash < 0 ? s : s[..slash];
        if (!IPAddress.TryParse(addrText, out IPAddress? address))
        {
            throw new FormatException($"'{text}' is not an IP address or CIDR (examples: 10.65.0.2, 10.65.0.0/16, fd00::/64).");
        }

        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        byte[] bytes = address.GetAddressBytes();
        int max = bytes.Length * 8;
        int prefix = max;
        if (slash >= 0 && (!int.TryParse(s.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out prefix) || prefix > max))
        {
            throw new FormatException($"'{text}' has an invalid prefix length; use 0 to {max}.");
        }

        return new AddressPrefix(bytes, prefix);
    }

    public static AddressPrefix From(IPAddress address) => Parse(address.ToString());

    /// <summary>True when the raw address bytes lie inside the prefix (other family: false).</summary>
    public bool Matches(ReadOnlySpan<byte> address) => address.Length == _bytes.Length && Covers(_bytes, PrefixLength, address);

    /// <summary>True when the first <paramref name="prefixLength"/> bits of two equal-length addresses agree.</summary>
    public static bool Covers(ReadOnlySpan<byte> network, int prefixLength, ReadOnlySpan<byte> address)
    {
        prefixLength = Math.Clamp(prefixLength, 0, network.Length * 8);
        int full = prefixLength / 8;
        if (!address[..full].SequenceEqual(network[..full]))
        {
            return false;
        }

        int rest = prefixLength % 8;
        if (rest == 0)
        {
            return true;
        }

        int mask = 0xff << (8 - rest) & 0xff;
        return (address[full] & mask) == (network[full] & mask);
    }

    public bool Matches(IPAddress? address)
    {
        if (address is null)
        {
            return false;
        }

        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int n);
        return Matches(b[..n]);
    }

    public AddressFamily Family => IsIPv6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;

    public override string ToString() => Address + "/" + PrefixLength;
}
