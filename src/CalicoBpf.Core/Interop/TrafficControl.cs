namespace CalicoBpf.Interop;

/// <summary>One BPF tc filter of a clsact hook: its program and the name tc gave it (obj.o:[sec]), in the kernel's order.</summary>
public sealed record TcBpfFilter(bool Ingress, uint ProgramId, string FilterName);

/// <summary>
/// Queueing disciplines and their statistics over rtnetlink (RTM_GETQDISC), what tc -s qdisc show
/// prints, read without running tc; and the BPF filters of the clsact hooks (RTM_GETTFILTER), what
/// bpftool net show lists as clsact/ingress and clsact/egress. Layouts: include/uapi/linux/rtnetlink.h
/// (tcmsg), pkt_sched.h (TCA_BPF_*), gen_stats.h (gnet_stats_basic, gnet_stats_queue).
/// </summary>
public static class TrafficControl
{
    private const ushort RTM_NEWQDISC = 36;
    private const ushort RTM_GETQDISC = 38;
    private const int TcMsgLen = 20;
    private const ushort RTM_NEWTFILTER = 44;
    private const ushort RTM_GETTFILTER = 46;
    private const int TCA_KIND = 1;
    private const int TCA_OPTIONS = 2;
    private const int TCA_BPF_NAME = 7;
    private const int TCA_BPF_ID = 11;
    private const int TCA_STATS = 3;
    private const int TCA_STATS2 = 7;
    private const int TCA_STATS_BASIC = 1;
    private const int TCA_STATS_QUEUE = 3;
    private const int TCA_STATS_PKT64 = 8;

    public const uint RootHandle = 0xFFFFFFFF;
    public const uint IngressParent = 0xFFFFFFF1;
    /// <summary>TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS) and TC_H_MIN_EGRESS: the clsact hooks filters hang on.</summary>
    public const uint ClsactIngress = 0xFFFFFFF2;
    public const uint ClsactEgress = 0xFFFFFFF3;

    /// <summary>
    /// The BPF filters on a device's clsact ingress and egress hooks (none without a clsact qdisc), as
    /// bpftool net show reads them: filters of kind bpf that carry options.
    /// </summary>
    public static IReadOnlyList<TcBpfFilter> ListBpfFilters(int ifIndex)
    {
        var result = new List<TcBpfFilter>();
        foreach (uint parent in new[] { ClsactIngress, ClsactEgress })
        {
            byte[] tcmsg = new byte[TcMsgLen];
            BinaryPrimitives.WriteInt32LittleEndian(tcmsg.AsSpan(4), ifIndex);
            BinaryPrimitives.WriteUInt32LittleEndian(tcmsg.AsSpan(12), parent);
            NetLink.Dump(RTM_GETTFILTER, tcmsg, chunk => NetLink.ForEachMessage(chunk, RTM_NEWTFILTER, msg =>
            {
                if (ParseBpfFilter(msg, parent == ClsactIngress) is { } f)
                {
                    result.Add(f);
                }
            }));
        }

        return result;
    }

    internal static TcBpfFilter? ParseBpfFilter(ReadOnlySpan<byte> msg, bool ingress)
    {
        if (msg.Length < TcMsgLen)
        {
            return null;
        }

        string kind = string.Empty, name = string.Empty;
        uint? id = null;
        NetLink.ForEachAttribute(msg[TcMsgLen..], (type, payload) =>
        {
            if (type == TCA_KIND)
            {
                kind = NetLink.ReadString(payload);
            }
            else if (type == TCA_OPTIONS)
            {
                NetLink.ForEachAttribute(payload, (ot, op) =>
                {
                    if (ot == TCA_BPF_ID && op.Length >= 4)
                    {
                        id = BinaryPrimitives.ReadUInt32LittleEndian(op);
                    }
                    else if (ot == TCA_BPF_NAME)
                    {
                        name = NetLink.ReadString(op);
                    }
                });
            }
        });
        return kind == "bpf" && id is { } programId ? new TcBpfFilter(ingress, programId, name) : null;
    }

    /// <summary>Every qdisc of the current network namespace with its counters.</summary>
    public static IReadOnlyList<QdiscCounters> ListQdiscs()
    {
        var result = new List<QdiscCounters>();
        NetLink.Dump(RTM_GETQDISC, TcMsgLen, chunk => NetLink.ForEachMessage(chunk, RTM_NEWQDISC, msg =>
        {
            QdiscCounters? q = Parse(msg);
            if (q is not null)
            {
                result.Add(q);
            }
        }));
        return result;
    }

    internal static QdiscCounters? Parse(ReadOnlySpan<byte> msg)
    {
        if (msg.Length < TcMsgLen)
        {
            return null;
        }

        int ifIndex = BinaryPrimitives.ReadInt32LittleEndian(msg[4..]);
        uint handle = BinaryPrimitives.ReadUInt32LittleEndian(msg[8..]);
        uint parent = BinaryPrimitives.ReadUInt32LittleEndian(msg[12..]);
        string kind = string.Empty;
        ulong bytes = 0, packets = 0;
        uint drops = 0, overlimits = 0, requeues = 0, backlog = 0, qlen = 0;
        bool haveStats2 = false;
        ulong? packets64 = null;
        NetLink.ForEachAttribute(msg[TcMsgLen..], (type, payload) =>
        {
            switch (type)
            {
                case TCA_KIND:
                    kind = NetLink.ReadString(payload);
                    break;
                case TCA_STATS2:
                    haveStats2 = true;
                    NetLink.ForEachAttribute(payload, (st, sp) =>
                    {
                        if (st == TCA_STATS_BASIC && sp.Length >= 12)
                        {
                            bytes = BinaryPrimitives.ReadUInt64LittleEndian(sp);
                            packets = BinaryPrimitives.ReadUInt32LittleEndian(sp[8..]);
                        }
                        else if (st == TCA_STATS_QUEUE && sp.Length >= 20)
                        {
                            qlen = BinaryPrimitives.ReadUInt32LittleEndian(sp);
                            backlog = BinaryPrimitives.ReadUInt32LittleEndian(sp[4..]);
                            drops = BinaryPrimitives.ReadUInt32LittleEndian(sp[8..]);
                            requeues = BinaryPrimitives.ReadUInt32LittleEndian(sp[12..]);
                            overlimits = BinaryPrimitives.ReadUInt32LittleEndian(sp[16..]);
                        }
                        else if (st == TCA_STATS_PKT64 && sp.Length >= 8)
                        {
                            packets64 = BinaryPrimitives.ReadUInt64LittleEndian(sp);
                        }
                    });
                    break;
                case TCA_STATS when !haveStats2 && payload.Length >= 36:
                    // struct tc_stats: bytes u64, packets, drops, overlimits, bps, pps, qlen, backlog (u32 each).
                    bytes = BinaryPrimitives.ReadUInt64LittleEndian(payload);
                    packets = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
                    drops = BinaryPrimitives.ReadUInt32LittleEndian(payload[12..]);
                    overlimits = BinaryPrimitives.ReadUInt32LittleEndian(payload[16..]);
                    qlen = BinaryPrimitives.ReadUInt32LittleEndian(payload[28..]);
                    backlog = BinaryPrimitives.ReadUInt32LittleEndian(payload[32..]);
                    break;
            }
        });

        return new QdiscCounters(ifIndex, null, kind, handle, parent, bytes, packets64 ?? packets, drops, overlimits, requeues, backlog, qlen);
    }

    /// <summary>A handle as tc prints it ("ffff:", "ffff:fff1", "root") back to its number.</summary>
    public static uint ParseHandle(string text)
    {
        if (text == "root")
        {
            return RootHandle;
        }

        int colon = text.IndexOf(':');
        string major = colon < 0 ? text : text[..colon], minor = colon < 0 ? string.Empty : text[(colon + 1)..];
        uint Hex(string h) => h.Length == 0 ? 0 : uint.Parse(h, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        return (Hex(major) << 16) | Hex(minor);
    }

    /// <summary>tc's handle text: "ffff:" for a major-only handle, "ffff:fff1" with a minor.</summary>
    public static string FormatHandle(uint handle, bool full = false)
    {
        uint major = handle >> 16;
        uint minor = handle & 0xffff;
        return minor == 0 && !full
            ? major.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + ":"
            : major.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + ":" + (minor == 0 ? string.Empty : minor.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// One qdisc and its counters as the kernel reports them (rtnetlink, or tc -s -j qdisc show): raw
/// numbers; the device's name when the source gives it (tc does), else only its ifindex.
/// </summary>
public sealed record QdiscCounters(int IfIndex, string? Device, string Kind, uint Handle, uint Parent,
    ulong Bytes, ulong Packets, uint Drops, uint Overlimits, uint Requeues, uint Backlog, uint QueueLength);
