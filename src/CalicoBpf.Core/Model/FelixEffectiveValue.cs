namespace CalicoBpf;

/// <summary>What Felix on one node uses for one field, and where that comes from.</summary>
public sealed class FelixEffectiveValue
{
    public string Node { get; init; } = string.Empty;

    /// <summary>The FelixConfiguration JSON name (bpfLogLevel).</summary>
    public string Field { get; init; } = string.Empty;

    /// <summary>The value as written where it comes from ("Debug", "true", "1s"); empty when Felix's default is "unset".</summary>
    public string Value { get; init; } = string.Empty;

    public FelixValueSource Source { get; init; }

    /// <summary>Which variable or object: "FELIX_BPFENABLED in DaemonSet kube-system/calico-node", "FelixConfiguration node.n1".</summary>
    public string SourceDetail { get; init; } = string.Empty;

    /// <summary>Lower-priority sources that set the field too, and are overridden.</summary>
    public string Overrides { get; init; } = string.Empty;
}
