namespace CalicoBpf;

/// <summary>Counter categories as calico-bpf counters dump prints them.</summary>
public enum CounterCategory
{
    Accepted,
    Dropped,
    Other,
    Redirect,
    Total,
    /// <summary>A counter index this version of CalicoBpf does not know (a newer Calico).</summary>
    Unknown,
}
