namespace CalicoBpf;

/// <summary>How an object of the difference side differs from the reference side (Compare-BpfState).</summary>
public enum StateChange
{
    /// <summary>Only the difference side has it.</summary>
    Added,

    /// <summary>Only the reference side has it.</summary>
    Removed,

    /// <summary>Both have it (the same key), with other values.</summary>
    Changed,
}
