namespace CalicoBpf;

/// <summary>What the dataplane would do with a flow (Test-BpfFlow).</summary>
public enum FlowVerdict
{
    Allow,
    Deny,

    /// <summary>The node's tables do not tell: Reason says what is missing and what to change.</summary>
    Unknown,
}
