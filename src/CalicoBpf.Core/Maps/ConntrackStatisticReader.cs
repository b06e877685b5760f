using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>
/// calico-bpf conntrack stats (felix/cmd/calico-bpf/commands/conntrack.go, conntrackStatsCmd, v3.30.0
/// and later): a node's live conntrack table counted on its raw bytes, by type, protocol and TCP
/// state, with no object per entry, so that counting a full table costs about what reading it does.
/// </summary>
public static class ConntrackStatisticReader
{
    private const byte Tcp = 6;
    private const byte Udp = 17;

    /// <summary>
    /// Counts every entry of the node's IPv4 (or IPv6) conntrack table as calico-bpf does: a NatForward
    /// entry only as a NAT connection; every other entry as a connection, in its protocol (key byte 0)
    /// and, for TCP, in exactly one state by <see cref="ConntrackLayout.StateOf"/>.
    /// </summary>
    public static ConntrackStatistic Read(INodeDataplane node, bool ipv6, IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        var tally = new ConntrackTally();
        using ConntrackScan scan = ConntrackReader.Open(node, new ConntrackQuery { IPv6 = ipv6, Tally = tally }, reporter);
        ConntrackLayout layout = scan.Layout;
        int nat = 0, normal = 0, reverse = 0, connections = 0, tcp = 0, udp = 0;
        int established = 0, closed = 0, reset = 0, synSent = 0;
        foreach (RawEntryBatch batch in scan.Batches(cancellationToken))
        {
            int count = batch.Count;
            for (int i = 0; i < count; i++)
            {
                ReadOnlySpan<byte> value = batch.Value(i);
                byte type = value[16];
                if (type == (byte)ConntrackType.NatForward)
                {
                    nat++;
                    continue;
                }

                connections++;
                if (type == (byte)ConntrackType.Normal)
                {
                    normal++;
                }
                else if (type == (byte)ConntrackType.NatReverse)
                {
                    reverse++;
                }

                ReadOnlySpan<byte> key = batch.Key(i);
                byte protocol = key[0];
                if (protocol == Udp)
                {
                    udp++;
                }
                else if (protocol == Tcp)
                {
                    tcp++;
                    switch (layout.StateOf(key, value))
                    {
                        case TcpState.Closed:
                            closed++;
                            break;
                        case TcpState.Reset:
                            reset++;
                            break;
                        case TcpState.Established:
                            established++;
                            break;
                        default:
                            synSent++;
                            break;
                    }
                }
            }
        }

        int entries = connections + nat;
        int maxEntries = (int)tally.MaxEntries;
        return new ConntrackStatistic
        {
            Node = node.Node,
            MapName = tally.Map,
            MapVersion = layout.Version,
            MaxEntries = maxEntries,
            Entries = entries,
            Fill = maxEntries == 0 ? 0 : 100.0 * entries / maxEntries,
            Connections = connections,
            NatConnections = nat,
            Normal = normal,
            NatReverse = reverse,
            Tcp = tcp,
            Udp = udp,
            Other = connections - tcp - udp,
            TcpEstablished = established,
            TcpClosed = closed,
            TcpReset = reset,
            TcpSynSent = synSent,
            PinPath = node.PinDirectory,
            Release = scan.Release,
        };
    }
}
