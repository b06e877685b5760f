namespace CalicoBpf;

/// <summary>What happened to a flow between two samples of Watch-BpfConntrack.</summary>
public enum ConntrackChangeKind
{
    /// <summary>The entry is new since the sample before.</summary>
    New,
    /// <summary>A TCP flow's state became Closed (FIN both ways) or Reset since the sample before.</summary>
    Closed,
    /// <summary>The entry is gone (Felix's conntrack cleaner removed it, or its timeout): shown as last seen.</summary>
    Expired,
}

/// <summary>
/// One conntrack entry that appeared, closed or went away between two samples of Watch-BpfConntrack.
/// Entry is the entry as Get-BpfConntrack writes it (now, or for Expired as last seen); its key fields
/// are repeated here for tables and filters.
/// </summary>
public sealed class ConntrackChange
{
    public string Node { get; init; } = string.Empty;
    /// <summary>1 for the first sample after the baseline reading, then 2, 3, ...</summary>
    public int Sample { get; init; }
    /// <summary>When the sample was due (UTC), the same on every node of the run.</summary>
    public DateTime Timestamp { get; init; }
    public ConntrackChangeKind Change { get; init; }
    public ConntrackEntry Entry { get; init; } = null!;
    public IpProtocol Protocol => Entry.Protocol;
    public ConntrackType Type => Entry.Type;
    /// <summary>Who opened the connection (address:port).</summary>
    public string Source => Entry.Source;
    /// <summary>Where it went (address:port; the backend of a NAT'd flow).</summary>
    public string Destination => Entry.Destination;
    public TcpState State => Entry.State;
    /// <summary>With -Resolve: the pods and the service of the entry (namespace/name), as Get-BpfConntrack -Resolve names them.</summary>
    public string SourcePod => Entry.SourcePod;
    public string DestinationPod => Entry.DestinationPod;
    public string Service => Entry.Service;

    public override string ToString() => $"{Change} {Entry}";
}
