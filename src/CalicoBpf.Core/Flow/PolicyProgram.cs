using CalicoBpf.Maps;

namespace CalicoBpf.Flow;

/// <summary>One rule of a policy program, with the counter id Felix gave it (null: none, as for end-of-tier rules).</summary>
public sealed record PolicyProgramRule(RuleMatch Match, ulong? MatchId = null);

/// <summary>A policy or a profile: its rules in order.</summary>
public sealed record PolicyBlock(string Name, IReadOnlyList<PolicyProgramRule> Rules);

/// <summary>A tier: its policies in order, and what a packet no policy decided gets ("" and "deny": deny; "pass": the next tier).</summary>
public sealed record PolicyTier(string Name, string EndAction, IReadOnlyList<PolicyBlock> Policies, ulong? EndRuleId = null)
{
    /// <summary>The EndAction of a tier whose debug file does not say it: before v3.30 Felix wrote "End of tier NAME" without the action.</summary>
    public const string EndNotWritten = "?";
}

/// <summary>
/// What Felix compiles into one interface's policy program (polprog.Rules of
/// felix/bpf/polprog/pol_prog_builder.go): host tiers by stage, workload tiers, profiles.
/// </summary>
public sealed class PolicyProgram
{
    public int IpVersion { get; init; } = 4;

    public bool ForHostInterface { get; init; }

    public bool ForXdp { get; init; }

    public bool SuppressNormalHostPolicy { get; init; }

    public IReadOnlyList<PolicyTier> HostPreDnatTiers { get; init; } = Array.Empty<PolicyTier>();

    public IReadOnlyList<PolicyTier> HostForwardTiers { get; init; } = Array.Empty<PolicyTier>();

    public IReadOnlyList<PolicyTier> HostNormalTiers { get; init; } = Array.Empty<PolicyTier>();

    public IReadOnlyList<PolicyBlock> HostProfiles { get; init; } = Array.Empty<PolicyBlock>();

    public IReadOnlyList<PolicyTier> Tiers { get; init; } = Array.Empty<PolicyTier>();

    public IReadOnlyList<PolicyBlock> Profiles { get; init; } = Array.Empty<PolicyBlock>();
}

/// <summary>
/// What the policy program reads of a packet (the state Calico's tc program fills before the tail
/// call): protocol, source, post-NAT and pre-NAT destination, and whether either end is this host.
/// For ICMP the post-NAT destination port holds type | code &lt;&lt; 8, as in Calico's state.
/// StateDestinationPort is the state's dport, which the ICMP type and code matches read (they
/// overlay it): the packet's destination port, or type | code &lt;&lt; 8 for ICMP; null means the
/// pre-NAT destination port.
/// </summary>
public sealed record PolicyPacket(
    int Protocol,
    IPAddress Source,
    int SourcePort,
    IPAddress Destination,
    int DestinationPort,
    IPAddress PreNatDestination,
    int PreNatDestinationPort,
    bool SourceIsHost = false,
    bool DestinationIsHost = false,
    int? StateDestinationPort = null)
{
    public static int IcmpPort(int type, int code) => (type & 0xff) | ((code & 0xff) << 8);
}

/// <summary>IP set membership as the program looks it up (cali_v4_ip_sets, an LPM trie on set id, address, port, protocol).</summary>
public interface IIpSetMembership
{
    /// <summary>False for a set the map does not hold (the lookup misses); null when the set's id is not known, so neither is the answer.</summary>
    bool? Contains(string setId, IPAddress address, int port, int protocol);
}

/// <summary>
/// Members as Felix writes them ("10.0.0.0/8", and named ports "10.0.0.2/32,tcp:80"): a CIDR
/// member matches any port and protocol; a named-port member uses the whole key, so address, port
/// and protocol must all be equal (felix/bpf/ipsets/map.go, MakeBPFIPSetEntry).
/// </summary>
public sealed class IpSetMembers : IIpSetMembership
{
    private readonly Dictionary<string, List<(AddressPrefix Prefix, int Port, int Protocol)>> _sets = new(StringComparer.Ordinal);

    public IpSetMembers(IEnumerable<KeyValuePair<string, IEnumerable<string>>> sets)
    {
        foreach ((string id, IEnumerable<string> members) in sets)
        {
            var list = new List<(AddressPrefix, int, int)>();
            foreach (string member in members)
            {
                list.Add(ParseMember(member));
            }

            _sets[id] = list;
        }
    }

    public bool? Contains(string setId, IPAddress address, int port, int protocol)
    {
        if (!_sets.TryGetValue(setId, out var members))
        {
            return false;
        }

        foreach ((AddressPrefix prefix, int p, int proto) in members)
        {
            if (proto == 0 ? prefix.Matches(address) : prefix.Address.Equals(address) && p == port && proto == protocol)
            {
                return true;
            }
        }

        return false;
    }

    private static (AddressPrefix, int, int) ParseMember(string member)
    {
        int comma = member.IndexOf(',', StringComparison.Ordinal);
        if (comma < 0)
        {
            return (AddressPrefix.Parse(member), 0, 0);
        }

        string[] named = member[(comma + 1)..].Split(':');
        int proto = named[0].ToLowerInvariant() switch { "tcp" => 6, "udp" => 17, "sctp" => 132, string n => int.Parse(n, CultureInfo.InvariantCulture) };
        return (AddressPrefix.Parse(member[..comma]), int.Parse(named[1], CultureInfo.InvariantCulture), proto);
    }
}

/// <summary>
/// IP set membership from a node's cali_v4_ip_sets / cali_v6_ip_sets entries (Get-BpfIpSet), for the
/// set names of a debug file's rules mapped to their ids (DebugProgram.IpSetIds). A name the file
/// gives no id for (a named-port set) gets the id Felix's allocator gives it when the map holds
/// members under that id (felix/idalloc/idalloc.go TrialHash: the first 8 bytes, little-endian, of
/// sha256 of the candidate number n, little-endian, then the name; the first n whose id is not 0 and
/// not taken); else it is not known.
/// </summary>
public sealed class MapIpSetMembership : IIpSetMembership
{
    private readonly Dictionary<string, ulong?> _derived = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, ulong> _ids;
    private readonly IReadOnlyDictionary<ulong, List<IpSetMember>> _members;

    public MapIpSetMembership(IReadOnlyDictionary<string, ulong> ids, IEnumerable<IpSetMember> members)
        : this(ids, Index(members))
    {
    }

    /// <summary>With members already indexed by set id (<see cref="Index"/>): one index for every program of a node.</summary>
    public MapIpSetMembership(IReadOnlyDictionary<string, ulong> ids, IReadOnlyDictionary<ulong, List<IpSetMember>> members)
    {
        _ids = ids;
        _members = members;
    }

    /// <summary>Members by set id.</summary>
    public static IReadOnlyDictionary<ulong, List<IpSetMember>> Index(IEnumerable<IpSetMember> members)
    {
        var index = new Dictionary<ulong, List<IpSetMember>>();
        foreach (IpSetMember m in members)
        {
            if (!index.TryGetValue(m.SetId, out List<IpSetMember>? list))
            {
                index[m.SetId] = list = new List<IpSetMember>();
            }

            list.Add(m);
        }

        return index;
    }

    public bool? Contains(string setId, IPAddress address, int port, int protocol)
    {
        if ((_ids.TryGetValue(setId, out ulong given) ? given : IdOf(setId)) is not ulong id)
        {
            return null;
        }

        if (!_members.TryGetValue(id, out List<IpSetMember>? members))
        {
            return false;
        }

        Span<byte> want = stackalloc byte[16];
        address.TryWriteBytes(want, out int n);
        Span<byte> net = stackalloc byte[16];
        foreach (IpSetMember m in members)
        {
            m.AddressValue.TryWriteBytes(net, out int nn);
            if (nn != n)
            {
                continue;
            }

            bool covers = AddressPrefix.Covers(net[..nn], m.PrefixLength, want[..n]);
            if (m.Port is null ? covers : covers && m.Port == port && (int)m.Protocol!.Value == protocol)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Felix's allocator's id for a set name, when the map holds members under it (the first candidates only: collisions are rare).</summary>
    private ulong? IdOf(string name)
    {
        lock (_derived)
        {
            if (!_derived.TryGetValue(name, out ulong? id))
            {
                id = null;
                for (ulong n = 0; n < 4 && id is null; n++)
                {
                    ulong candidate = TrialHash(name, n);
                    if (candidate != 0 && _members.ContainsKey(candidate))
                    {
                        id = candidate;
                    }
                }

                _derived[name] = id;
            }

            return id;
        }
    }

    internal static ulong TrialHash(string name, ulong n)
    {
        byte[] buffer = new byte[8 + Encoding.UTF8.GetByteCount(name)];
        BinaryPrimitives.WriteUInt64LittleEndian(buffer, n);
        Encoding.UTF8.GetBytes(name, buffer.AsSpan(8));
        return BinaryPrimitives.ReadUInt64LittleEndian(System.Security.Cryptography.SHA256.HashData(buffer));
    }
}
