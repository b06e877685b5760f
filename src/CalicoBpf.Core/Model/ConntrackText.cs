using System.Net.Sockets;

namespace CalicoBpf;

/// <summary>Text forms shared by the objects and views: protocol names, endpoints, flag names, states.</summary>
public static class ConntrackText
{
    private static readonly (ConntrackFlags Flag, string Name)[] FlagTable =
    {
        (ConntrackFlags.NatOut, "nat-out"),
        (ConntrackFlags.DsrForward, "fwd-dsr"),
        (ConntrackFlags.NodePortForward, "np-fwd"),
        (ConntrackFlags.SkipFib, "skip-fib"),
        (ConntrackFlags.Reserved10, "reserved-0x10"),
        (ConntrackFlags.Reserved20, "reserved-0x20"),
        (ConntrackFlags.ExternalLocal, "ext-local"),
        (ConntrackFlags.ViaNatInterface, "via-nat-iface"),
        (ConntrackFlags.BA, "B-A"),
        (ConntrackFlags.HostPsnat, "host-psnat"),
        (ConntrackFlags.ServiceSelf, "svc-self"),
        (ConntrackFlags.NodePortLoop, "np-loop"),
        (ConntrackFlags.NodePortRemote, "np-remote"),
        (ConntrackFlags.NoDsr, "no-dsr"),
        (ConntrackFlags.SkipRedirectPeer, "no-redir-peer"),
        (ConntrackFlags.SetDscp, "dscp"),
        (ConntrackFlags.Maglev, "maglev"),
        (ConntrackFlags.SendReset, "send-rst"),
        (ConntrackFlags.ConnLimitIngress, "connlimit-in"),
        (ConntrackFlags.ConnLimitIngressRejected, "connlimit-in-rej"),
        (ConntrackFlags.ConnLimitEgress, "connlimit-out"),
        (ConntrackFlags.ConnLimitDecremented, "connlimit-dec"),
    };

    /// <summary>Protocol as calico-bpf prints it: TCP, UDP, ICMP, ICMP6, else Proto-n.</summary>
    public static string Protocol(IpProtocol protocol) => protocol switch
    {
        IpProtocol.Tcp => "TCP",
        IpProtocol.Udp => "UDP",
        IpProtocol.Icmp => "ICMP",
        IpProtocol.IcmpV6 => "ICMP6",
        _ => "Proto-" + (byte)protocol,
    };

    /// <summary>
    /// A protocol as <see cref="Protocol"/> prints it (TCP, ICMP6, Proto-200, any case), by its enum
    /// name (IcmpV6, Gre) or by number (0 to 255); null for anything else.
    /// </summary>
    public static IpProtocol? ParseProtocol(string text)
    {
        string t = text.Trim();
        if (t.StartsWith("Proto-", StringComparison.OrdinalIgnoreCase))
        {
            return byte.TryParse(t.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out byte n) ? (IpProtocol)n : null;
        }

        if (byte.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out byte b))
        {
            return (IpProtocol)b;
        }

        // Enum.TryParse would read "tcp,udp" as the flags 6|17, protocol 23.
        if (t.Contains(',') || t.Any(char.IsWhiteSpace))
        {
            return null;
        }

        if (t.Equals("ICMP6", StringComparison.OrdinalIgnoreCase))
        {
            return IpProtocol.IcmpV6;
        }

        return t.Length > 0 && !char.IsDigit(t[0]) && t[0] != '-' && t[0] != '+' && Enum.TryParse(t, ignoreCase: true, out IpProtocol p) ? p : null;
    }

    /// <summary>addr:port, IPv6 without brackets as calico-bpf's text dump prints it.</summary>
    public static string Endpoint(IPAddress address, int port) => address + ":" + port;

    /// <summary>host:port with IPv6 in brackets ([fd00::1]:443), as calico-bpf's JSON prints endpoints.</summary>
    public static string HostPort(IPAddress address, int port) =>
        IsIPv6(address) ? "[" + address + "]:" + port : address + ":" + port;

    /// <summary>
    /// Bit 0x8000 is cluster-external in v3.31 (CALI_CT_FLAG_CLUSTER_EXTERNAL, which calico-bpf does
    /// not name; the name here is ours) and set-dscp ("dscp") from v3.32 (bpf-gpl/conntrack_types.h at
    /// each tag); before v3.31 conntrack had no such bit.
    /// </summary>
    private static string? Name8000(CalicoRelease release) =>
        release.AtLeast(3, 32) ? "dscp" : release.AtLeast(3, 31) ? "cluster-external" : null;

    /// <summary>The calico-bpf names of the set flag bits in the newest release; unnamed bits as 0x hex.</summary>
    public static string[] FlagNames(ConntrackFlags flags) => FlagNames(flags, CalicoRelease.Newest);

    /// <summary>The names of the set flag bits as the release defines them; unnamed bits as 0x hex.</summary>
    public static string[] FlagNames(ConntrackFlags flags, CalicoRelease release)
    {
        if (flags == ConntrackFlags.None)
        {
            return Array.Empty<string>();
        }

        var names = new List<string>();
        uint rest = (uint)flags;
        foreach ((ConntrackFlags flag, string table) in FlagTable)
        {
            string? name = flag == ConntrackFlags.SetDscp ? Name8000(release) : table;
            if ((rest & (uint)flag) != 0 && name is not null)
            {
                names.Add(name);
                rest &= ~(uint)flag;
            }
        }

        for (int bit = 0; rest != 0 && bit < 32; bit++)
        {
            uint v = 1u << bit;
            if ((rest & v) != 0)
            {
                names.Add("0x" + v.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
                rest &= ~v;
            }
        }

        return names.ToArray();
    }

    /// <summary>calico-bpf's TCP state rule (reference 2.1.5), evaluated on the entry's own legs.</summary>
    public static TcpState DeriveState(IpProtocol protocol, ConntrackType type, ConntrackFlags flags, ConntrackLeg a, ConntrackLeg b) =>
        DeriveState(protocol, type, flags, LegBits(a), LegBits(b));

    /// <summary>
    /// The same rule on two legs' bit words as Calico stores them (syn_seen 0x1, ack_seen 0x2,
    /// fin_seen 0x4, rst_seen 0x8): what the readers decide on raw bytes.
    /// </summary>
    public static TcpState DeriveState(IpProtocol protocol, ConntrackType type, ConntrackFlags flags, uint a, uint b)
    {
        const uint Syn = 0x1, Ack = 0x2, Fin = 0x4, Rst = 0x8;
        if (protocol != IpProtocol.Tcp || type == ConntrackType.NatForward)
        {
            return TcpState.None;
        }

        if (((flags & ConntrackFlags.DsrForward) != 0 && ((a | b) & Fin) != 0) || (a & b & Fin) != 0)
        {
            return TcpState.Closed;
        }

        if (((a | b) & Rst) != 0)
        {
            return TcpState.Reset;
        }

        return (a & b & (Syn | Ack)) == (Syn | Ack) ? TcpState.Established : TcpState.SynSent;
    }

    private static uint LegBits(ConntrackLeg l) =>
        (l.SynSeen ? 0x1u : 0) | (l.AckSeen ? 0x2u : 0) | (l.FinSeen ? 0x4u : 0) | (l.RstSeen ? 0x8u : 0);

    /// <summary>A one-line description in the shape of calico-bpf conntrack dump.</summary>
    public static string Describe(ConntrackEntry e)
    {
        var sb = new StringBuilder();
        sb.Append(Protocol(e.Protocol)).Append(' ').Append(Endpoint(e.SourceAddressValue, e.SourcePort)).Append(" -> ");
        if (e.Type == ConntrackType.NatReverse && e.ServiceAddressValue is not null)
        {
            sb.Append(Endpoint(e.ServiceAddressValue, e.ServicePort ?? 0)).Append(" -> ");
        }

        sb.Append(Endpoint(e.DestinationAddressValue, e.DestinationPort));
        if (e.Type == ConntrackType.NatForward)
        {
            sb.Append(" (nat-forward)");
        }

        if (e.TunnelAddressValue is not null)
        {
            sb.Append(" external client, service forwarded to/from ").Append(e.TunnelAddressValue);
        }

        if ((e.Flags & ConntrackFlags.HostPsnat) != 0 && e.Type != ConntrackType.NatForward)
        {
            // calico-bpf prints the original source port of any entry whose source port host PSNAT changed.
            sb.Append(" source port changed from ").Append(e.OriginalSourcePort ?? 0);
        }

        sb.Append("  Active ago ").Append(GoDuration(e.AgeValue));
        if (e.State != TcpState.None)
        {
            sb.Append(' ').Append(StateText(e.State));
        }

        return sb.ToString();
    }

    public static string StateText(TcpState state) => state switch
    {
        TcpState.SynSent => "SYN-SENT",
        TcpState.Established => "ESTABLISHED",
        TcpState.Closed => "CLOSED",
        TcpState.Reset => "RESET",
        _ => string.Empty,
    };

    /// <summary>Every state's text as the tables show it (and calico-bpf prints it).</summary>
    public static IReadOnlyList<string> StateTexts { get; } =
        Enum.GetValues<TcpState>().Select(StateText).Where(t => t.Length > 0).ToArray();

    /// <summary>A state from its text as shown (SYN-SENT) or its name (SynSent), case-insensitive; null when it is neither.</summary>
    public static TcpState? ParseState(string text)
    {
        foreach (TcpState state in Enum.GetValues<TcpState>())
        {
            if (StateText(state).Length > 0 && string.Equals(StateText(state), text, StringComparison.OrdinalIgnoreCase))
            {
                return state;
            }
        }

        // Not "SynSent,Established" (Enum.TryParse reads a comma list as OR-ed values), nor a number.
        return !text.Contains(',') && Enum.TryParse(text, ignoreCase: true, out TcpState named) && !int.TryParse(text, out _) ? named : null;
    }

    /// <summary>
    /// A duration for a table cell in its two largest units: 850ms, 8.3s, 42s, 11m08s, 3h05m, 2d04h
    /// (6 characters below 100 days; GoDuration gives every digit, for lists and messages). The
    /// decimal point is always '.', whatever the culture, as -OlderThan takes it back.
    /// </summary>
    public static string ShortDuration(TimeSpan span)
    {
        string sign = span < TimeSpan.Zero ? "-" : string.Empty;
        TimeSpan d = span.Duration();
        string text = d.TotalSeconds < 1 ? $"{(int)d.TotalMilliseconds}ms"
            : d.TotalSeconds < 10 ? (Math.Floor(d.TotalSeconds * 10) / 10).ToString("0.0", CultureInfo.InvariantCulture) + "s"
            : d.TotalMinutes < 1 ? $"{(int)d.TotalSeconds}s"
            : d.TotalHours < 1 ? $"{d.Minutes}m{d.Seconds:00}s"
            : d.TotalDays < 1 ? $"{d.Hours}h{d.Minutes:00}m"
            : $"{(int)d.TotalDays}d{d.Hours:00}h";
        return sign + text;
    }

    /// <summary>Go's time.Duration text, as calico-bpf prints ages (1.5s, 2m3.2s, 1h0m0s, 850ms).</summary>
    public static string GoDuration(TimeSpan span)
    {
        long ns = span.Ticks * 100;
        if (ns == 0)
        {
            return "0s";
        }

        var sb = new StringBuilder();
        if (ns < 0)
        {
            sb.Append('-');
            ns = -ns;
        }

        if (ns < 1_000_000_000)
        {
            (long unit, string suffix) = ns < 1_000 ? (1L, "ns") : ns < 1_000_000 ? (1_000L, "µs") : (1_000_000L, "ms");
            sb.Append(Fraction(ns, unit)).Append(suffix);
            return sb.ToString();
        }

        long hours = ns / 3_600_000_000_000;
        ns -= hours * 3_600_000_000_000;
        long minutes = ns / 60_000_000_000;
        ns -= minutes * 60_000_000_000;
        if (hours > 0)
        {
            sb.Append(hours).Append('h');
        }

        if (hours > 0 || minutes > 0)
        {
            sb.Append(minutes).Append('m');
        }

        sb.Append(Fraction(ns, 1_000_000_000)).Append('s');
        return sb.ToString();
    }

    private static string Fraction(long value, long unit)
    {
        long whole = value / unit;
        long frac = value % unit;
        if (frac == 0)
        {
            return whole.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        int digits = unit switch { 1_000 => 3, 1_000_000 => 6, 1_000_000_000 => 9, _ => 0 };
        string f = frac.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(digits, '0').TrimEnd('0');
        return whole.ToString(System.Globalization.CultureInfo.InvariantCulture) + "." + f;
    }

    public static bool IsIPv6(IPAddress address) => address.AddressFamily == AddressFamily.InterNetworkV6;
}
