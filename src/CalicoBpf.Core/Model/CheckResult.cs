namespace CalicoBpf;

/// <summary>One check on one node (or the cluster): what was found, the evidence, and what to do.</summary>
public sealed class CheckResult
{
    /// <summary>The check's stable id (bpf-running, kube-proxy-conflict, ...).</summary>
    public string Check { get; init; } = string.Empty;

    public string Title { get; init; } = string.Empty;

    /// <summary>The node the result is about; empty for cluster-wide checks.</summary>
    public string Node { get; init; } = string.Empty;

    public CheckStatus Status { get; init; }

    public string Message { get; init; } = string.Empty;

    /// <summary>What the verdict rests on: the log line, the value and where it is set, the counter.</summary>
    public string Evidence { get; init; } = string.Empty;

    /// <summary>A runnable command that fixes it, where there is one.</summary>
    public string Remediation { get; init; } = string.Empty;

    public string HelpUri { get; init; } = string.Empty;

    public override string ToString() => $"{Status} {Check}{(Node.Length > 0 ? " on " + Node : string.Empty)}: {Message}";
}
