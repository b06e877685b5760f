namespace CalicoBpf;

/// <summary>One direction of a connection (struct calico_ct_leg).</summary>
public sealed record ConntrackLeg
{
    public static readonly ConntrackLeg Empty = new();

    public ulong Bytes { get; init; }
    public uint Packets { get; init; }
    /// <summary>TCP sequence number, decoded from network order.</summary>
    public uint SequenceNumber { get; init; }
    public bool SynSeen { get; init; }
    public bool AckSeen { get; init; }
    public bool FinSeen { get; init; }
    public bool RstSeen { get; init; }
    /// <summary>Policy allowed this direction.</summary>
    public bool Approved { get; init; }
    /// <summary>This leg's packet created the entry.</summary>
    public bool Opener { get; init; }
    /// <summary>The leg was created by a workload-side program.</summary>
    public bool Workload { get; init; }
    /// <summary>Ingress ifindex for traffic towards the host; 0 for traffic from the host.</summary>
    public int IfIndex { get; init; }

    /// <summary>One line for a CSV cell or a message: "1500 bytes 12 packets seq 4211 syn ack approved opener ifindex 5".</summary>
    public override string ToString()
    {
        var words = new List<string> { $"{Bytes} bytes", $"{Packets} packets", $"seq {SequenceNumber}" };
        foreach ((bool on, string name) in new[] { (SynSeen, "syn"), (AckSeen, "ack"), (FinSeen, "fin"), (RstSeen, "rst"), (Approved, "approved"), (Opener, "opener"), (Workload, "workload") })
        {
            if (on)
            {
                words.Add(name);
            }
        }

        words.Add($"ifindex {IfIndex}");
        return string.Join(" ", words);
    }
}
