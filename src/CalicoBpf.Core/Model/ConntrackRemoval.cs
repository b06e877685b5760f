namespace CalicoBpf;

/// <summary>How many conntrack entries a removal took out.</summary>
public sealed class ConntrackRemoval
{
    public string Node { get; init; } = string.Empty;
    public string MapName { get; init; } = string.Empty;
    /// <summary>Entries deleted, NAT partners included.</summary>
    public int Removed { get; init; }
    /// <summary>Entries asked for that were already gone (expired or removed by someone else meanwhile).</summary>
    public int AlreadyGone { get; init; }
}
