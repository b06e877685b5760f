namespace CalicoBpf;

/// <summary>
/// How a node's conntrack table is used, counted as calico-bpf conntrack stats counts it (v3.30 and
/// later): NatForward entries only as NAT connections; every other entry as a connection, by
/// protocol and, for TCP, by state. One object per node and table.
/// </summary>
public sealed class ConntrackStatistic
{
    public string Node { get; init; } = string.Empty;
    /// <summary>The pin name of the table counted (= kernel map name), such as cali_v4_ct4.</summary>
    public string MapName { get; init; } = string.Empty;
    public int MapVersion { get; init; }
    /// <summary>The table's max_entries: calico-bpf's map_size.</summary>
    public int MaxEntries { get; init; }
    /// <summary>Every entry of the table, Connections plus NatConnections: calico-bpf's total_entries.</summary>
    public int Entries { get; init; }
    /// <summary>Entries as a percentage of MaxEntries (Get-BpfMap's FillPercent, not rounded).</summary>
    public double Fill { get; init; }
    /// <summary>The entries that are not NatForward (Normal, NatReverse, and any type Calico adds): calico-bpf's total_connections.</summary>
    public int Connections { get; init; }
    /// <summary>The NatForward entries (one per connection to a service): calico-bpf's nat_connections.</summary>
    public int NatConnections { get; init; }
    /// <summary>The Normal entries (connections without service NAT); not in calico-bpf's output.</summary>
    public int Normal { get; init; }
    /// <summary>The NatReverse entries (the tracking entries of connections to a service); not in calico-bpf's output.</summary>
    public int NatReverse { get; init; }
    /// <summary>The connections of protocol 6: calico-bpf's tcp.</summary>
    public int Tcp { get; init; }
    /// <summary>The connections of protocol 17: calico-bpf's udp.</summary>
    public int Udp { get; init; }
    /// <summary>The connections of any other protocol (ICMP, SCTP, ...): calico-bpf's others.</summary>
    public int Other { get; init; }
    /// <summary>TCP connections in state Established: calico-bpf's tcp_established.</summary>
    public int TcpEstablished { get; init; }
    /// <summary>TCP connections in state Closed (FIN seen both ways, or either way on a DSR forward entry): calico-bpf's tcp_closed.</summary>
    public int TcpClosed { get; init; }
    /// <summary>TCP connections in state Reset (an RST seen, not closed): calico-bpf's tcp_reset.</summary>
    public int TcpReset { get; init; }
    /// <summary>TCP connections in state SynSent (not yet established both ways): calico-bpf's tcp_syn_sent.</summary>
    public int TcpSynSent { get; init; }
    /// <summary>The bpffs directory the table is pinned in, on its node (-PinPath of the read).</summary>
    public string PinPath { get; init; } = string.Empty;
    /// <summary>The Calico release whose rules read the table: see Get-BpfMap's CalicoRelease.</summary>
    public CalicoRelease Release { get; init; } = CalicoRelease.Newest;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{MapName} on {Node}: {Entries} of {MaxEntries} entries ({Fill:0.0}%), {Connections} connections (TCP {Tcp}, UDP {Udp}, others {Other}), {NatConnections} NAT");
}
