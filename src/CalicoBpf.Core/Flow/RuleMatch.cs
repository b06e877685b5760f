using System.Runtime.CompilerServices;
using CalicoBpf.Maps;

namespace CalicoBpf.Flow;

/// <summary>One port range of a rule (PortRange of felix/proto/felixbackend.proto): First to Last, both included.</summary>
public readonly record struct PortRange(int First, int Last)
{
    public bool Contains(int port) => port >= First && port <= Last;

    public override string ToString() => First == Last ? First.ToString(CultureInfo.InvariantCulture) : $"{First}-{Last}";
}

/// <summary>
/// What one policy rule matches, as Felix's policy program builder compiles it
/// (felix/bpf/polprog/pol_prog_builder.go, writeRule): read from the rule's protobuf text, the
/// "Start of rule ..." comment of a policy debug file. Fields the program does not look at
/// (original selectors, service account and HTTP matches, metadata) are kept by name only.
/// </summary>
public sealed class RuleMatch
{
    // Each version's rule, computed once and published whole (a holder, so "none" is cached too):
    // one rule object serves the worker threads of every node (Everything is static).
    private StrongBox<RuleMatch?>? _v4;
    private StrongBox<RuleMatch?>? _v6;
    private AddressPrefix[]? _src;
    private AddressPrefix[]? _notSrc;
    private AddressPrefix[]? _dst;
    private AddressPrefix[]? _notDst;

    public string Action { get; private set; } = string.Empty;

    /// <summary>0: both; 4 or 6 (proto IPVersion IPV4 = 4, IPV6 = 6).</summary>
    public int IpVersion { get; private set; }

    /// <summary>The protocol number the program compares (a name Felix's builder does not know is 0).</summary>
    public int? Protocol { get; private set; }

    public int? NotProtocol { get; private set; }

    public List<string> SrcNet { get; } = new();

    public List<string> NotSrcNet { get; } = new();

    public List<string> DstNet { get; } = new();

    public List<string> NotDstNet { get; } = new();

    public List<PortRange> SrcPorts { get; } = new();

    public List<PortRange> NotSrcPorts { get; } = new();

    public List<PortRange> DstPorts { get; } = new();

    public List<PortRange> NotDstPorts { get; } = new();

    public List<string> SrcNamedPortIpSetIds { get; } = new();

    public List<string> NotSrcNamedPortIpSetIds { get; } = new();

    public List<string> DstNamedPortIpSetIds { get; } = new();

    public List<string> NotDstNamedPortIpSetIds { get; } = new();

    public List<string> SrcIpSetIds { get; } = new();

    public List<string> NotSrcIpSetIds { get; } = new();

    public List<string> DstIpSetIds { get; } = new();

    public List<string> NotDstIpSetIds { get; } = new();

    public List<string> DstIpPortSetIds { get; } = new();

    public (int Type, int? Code)? Icmp { get; private set; }

    public (int Type, int? Code)? NotIcmp { get; private set; }

    public string RuleId { get; private set; } = string.Empty;

    /// <summary>Fields of the rule the BPF program does not compile (they shape IP sets in Felix's calculation, or are for other dataplanes).</summary>
    public List<string> Ignored { get; } = new();

    /// <summary>The rule exactly as given.</summary>
    public string Text { get; private set; } = string.Empty;

    /// <summary>The empty rule: an end-of-tier or no-profile rule, which matches every packet.</summary>
    public static RuleMatch Everything { get; } = new();

    /// <summary>
    /// Reads a rule in protobuf text format (<c>action:"allow" protocol:{name:"tcp"} dst_ports:{first:80 last:81}</c>).
    /// Spacing is free (protobuf-go varies it on purpose), field names are felixbackend.proto's.
    /// </summary>
    public static RuleMatch Parse(string text)
    {
        var r = new RuleMatch { Text = text };
        foreach ((string name, TextValue value) in ProtoText.Parse(text))
        {
            switch (name)
            {
                case "action": r.Action = value.String(name); break;
                case "ip_version": r.IpVersion = value.Enum(name) switch { "IPV4" => 4, "IPV6" => 6, "ANY" => 0, string n => int.Parse(n, CultureInfo.InvariantCulture) }; break;
                case "protocol": r.Protocol = ProtocolNumber(value, name); break;
                case "not_protocol": r.NotProtocol = ProtocolNumber(value, name); break;
                case "src_net": r.SrcNet.Add(value.String(name)); break;
                case "not_src_net": r.NotSrcNet.Add(value.String(name)); break;
                case "dst_net": r.DstNet.Add(value.String(name)); break;
                case "not_dst_net": r.NotDstNet.Add(value.String(name)); break;
                case "src_ports": r.SrcPorts.Add(Range(value, name)); break;
                case "not_src_ports": r.NotSrcPorts.Add(Range(value, name)); break;
                case "dst_ports": r.DstPorts.Add(Range(value, name)); break;
                case "not_dst_ports": r.NotDstPorts.Add(Range(value, name)); break;
                case "src_named_port_ip_set_ids": r.SrcNamedPortIpSetIds.Add(value.String(name)); break;
                case "not_src_named_port_ip_set_ids": r.NotSrcNamedPortIpSetIds.Add(value.String(name)); break;
                case "dst_named_port_ip_set_ids": r.DstNamedPortIpSetIds.Add(value.String(name)); break;
                case "not_dst_named_port_ip_set_ids": r.NotDstNamedPortIpSetIds.Add(value.String(name)); break;
                case "src_ip_set_ids": r.SrcIpSetIds.Add(value.String(name)); break;
                case "not_src_ip_set_ids": r.NotSrcIpSetIds.Add(value.String(name)); break;
                case "dst_ip_set_ids": r.DstIpSetIds.Add(value.String(name)); break;
                case "not_dst_ip_set_ids": r.NotDstIpSetIds.Add(value.String(name)); break;
                case "dst_ip_port_set_ids": r.DstIpPortSetIds.Add(value.String(name)); break;
                case "icmp_type": r.Icmp = (value.Int(name), null); break;
                case "icmp_type_code": r.Icmp = TypeCode(value, name); break;
                case "not_icmp_type": r.NotIcmp = (value.Int(name), null); break;
                case "not_icmp_type_code": r.NotIcmp = TypeCode(value, name); break;
                case "rule_id": r.RuleId = value.String(name); break;
                default: r.Ignored.Add(name); break;
            }
        }

        return r;
    }

    /// <summary>
    /// The rule as the program for one IP version holds it (felix/rules/policy.go,
    /// FilterRuleToIPVersion): nets of the other family are dropped; null when the rule is for the
    /// other version, when a net list held only the other family, or when a negated list holds the
    /// catch-all (0.0.0.0/0, ::/0).
    /// </summary>
    public RuleMatch? ForIpVersion(int ipVersion)
    {
        // Kept: a rule is read once and evaluated for many packets. Two threads may both compute it; the
        // first complete holder published wins, and every thread returns that one.
        ref StrongBox<RuleMatch?>? slot = ref (ipVersion == 4 ? ref _v4 : ref _v6);
        StrongBox<RuleMatch?>? box = Volatile.Read(ref slot);
        if (box is null)
        {
            var mine = new StrongBox<RuleMatch?>(FilterTo(ipVersion == 4 ? 4 : 6));
            box = Interlocked.CompareExchange(ref slot, mine, null) ?? mine;
        }

        return box.Value;
    }

    internal AddressPrefix[] SrcPrefixes => _src ??= SrcNet.Select(AddressPrefix.Parse).ToArray();

    internal AddressPrefix[] NotSrcPrefixes => _notSrc ??= NotSrcNet.Select(AddressPrefix.Parse).ToArray();

    internal AddressPrefix[] DstPrefixes => _dst ??= DstNet.Select(AddressPrefix.Parse).ToArray();

    internal AddressPrefix[] NotDstPrefixes => _notDst ??= NotDstNet.Select(AddressPrefix.Parse).ToArray();

    private RuleMatch? FilterTo(int ipVersion)
    {
        if (IpVersion != 0 && IpVersion != ipVersion)
        {
            return null;
        }

        RuleMatch copy = CloneLists();
        var lists = new (List<string> From, bool Negated, List<string> Target)[]
        {
            (SrcNet, false, copy.SrcNet), (NotSrcNet, true, copy.NotSrcNet), (DstNet, false, copy.DstNet), (NotDstNet, true, copy.NotDstNet),
        };
        foreach ((List<string> from, bool negated, List<string> target) in lists)
        {
            if (from.Count == 0)
            {
                continue;
            }

            target.Clear();
            foreach (string net in from)
            {
                bool v6 = net.Contains(':', StringComparison.Ordinal);
                if (v6 != (ipVersion == 6))
                {
                    continue;
                }

                if (negated && net is "0.0.0.0/0" or "::/0")
                {
                    return null;
                }

                target.Add(net);
            }

            if (target.Count == 0)
            {
                return null;
            }
        }

        return copy;
    }

    private RuleMatch CloneLists()
    {
        var c = new RuleMatch
        {
            Action = Action, IpVersion = IpVersion, Protocol = Protocol, NotProtocol = NotProtocol, Icmp = Icmp, NotIcmp = NotIcmp,
            RuleId = RuleId, Text = Text,
        };
        c.SrcNet.AddRange(SrcNet); c.NotSrcNet.AddRange(NotSrcNet); c.DstNet.AddRange(DstNet); c.NotDstNet.AddRange(NotDstNet);
        c.SrcPorts.AddRange(SrcPorts); c.NotSrcPorts.AddRange(NotSrcPorts); c.DstPorts.AddRange(DstPorts); c.NotDstPorts.AddRange(NotDstPorts);
        c.SrcNamedPortIpSetIds.AddRange(SrcNamedPortIpSetIds); c.NotSrcNamedPortIpSetIds.AddRange(NotSrcNamedPortIpSetIds);
        c.DstNamedPortIpSetIds.AddRange(DstNamedPortIpSetIds); c.NotDstNamedPortIpSetIds.AddRange(NotDstNamedPortIpSetIds);
        c.SrcIpSetIds.AddRange(SrcIpSetIds); c.NotSrcIpSetIds.AddRange(NotSrcIpSetIds); c.DstIpSetIds.AddRange(DstIpSetIds);
        c.NotDstIpSetIds.AddRange(NotDstIpSetIds); c.DstIpPortSetIds.AddRange(DstIpPortSetIds); c.Ignored.AddRange(Ignored);
        return c;
    }

    /// <summary>Felix's protocolToNumber: tcp, udp, icmp and sctp by name (any case), else the number; another name is 0.</summary>
    private static int ProtocolNumber(TextValue value, string field)
    {
        Dictionary<string, TextValue> m = value.Message(field);
        if (m.TryGetValue("number", out TextValue? n))
        {
            return n.Int(field + ".number") & 0xff;
        }

        string name = m.TryGetValue("name", out TextValue? s) ? s.String(field + ".name") : string.Empty;
        return name.ToLowerInvariant() switch { "tcp" => 6, "udp" => 17, "icmp" => 1, "sctp" => 132, _ => 0 };
    }

    private static PortRange Range(TextValue value, string field)
    {
        Dictionary<string, TextValue> m = value.Message(field);
        int first = m.TryGetValue("first", out TextValue? f) ? f.Int(field + ".first") : 0;
        int last = m.TryGetValue("last", out TextValue? l) ? l.Int(field + ".last") : 0;
        return new PortRange(first, last);
    }

    private static (int, int?) TypeCode(TextValue value, string field)
    {
        Dictionary<string, TextValue> m = value.Message(field);
        return (m.TryGetValue("type", out TextValue? t) ? t.Int(field + ".type") : 0, m.TryGetValue("code", out TextValue? c) ? c.Int(field + ".code") : 0);
    }
}
