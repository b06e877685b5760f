namespace CalicoBpf;

/// <summary>A Calico map pinned on a node: what it is and how full it is.</summary>
public sealed class MapInfo
{
    public string Node { get; init; } = string.Empty;
    /// <summary>The pin name (= kernel map name), such as cali_v4_ct4.</summary>
    public string Name { get; init; } = string.Empty;
    /// <summary>The name without its version suffix, such as cali_v4_ct.</summary>
    public string BaseName { get; init; } = string.Empty;
    public int Version { get; init; }
    public MapFamily Family { get; init; }
    public BpfMapType Type { get; init; }
    public int KeySize { get; init; }
    public int ValueSize { get; init; }
    public int MaxEntries { get; init; }
    /// <summary>Entries present now; null for maps that cannot be counted (program arrays, ring buffers).</summary>
    public long? Entries { get; init; }
    /// <summary>Entries as a percentage of MaxEntries, rounded to one decimal; null for arrays (whose slots all exist from the start) and maps not counted.</summary>
    public double? FillPercent { get; init; }
    public uint Id { get; init; }
    public uint Flags { get; init; }
    public string Path { get; init; } = string.Empty;
    /// <summary>What the map holds, from the Calico reference (empty for maps CalicoBpf does not describe).</summary>
    public string Description { get; init; } = string.Empty;
    /// <summary>The node's Calico release the map is decoded with, and how it was found (image, -CalicoVersion, or inferred from the pins).</summary>
    public NodeRelease? CalicoRelease { get; init; }

    public override string ToString() => $"{Name} {Type} {Entries?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"}/{MaxEntries}";
}
