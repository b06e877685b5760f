namespace CalicoBpf;

/// <summary>One line of the kernel trace buffer, as Calico's eBPF programs print them with bpfLogLevel Debug.</summary>
public sealed class TraceLogEntry
{
    public string Node { get; init; } = string.Empty;
    /// <summary>The task that was running (often &lt;idle&gt; or a process sending the packet).</summary>
    public string? Process { get; init; }
    public int? Pid { get; init; }
    public int? Cpu { get; init; }
    /// <summary>The irqs-off / need-resched / hardirq-softirq / preempt-depth column.</summary>
    public string? Flags { get; init; }
    /// <summary>The trace clock timestamp (time since boot).</summary>
    public string? Timestamp => TimestampValue?.ToString("c", CultureInfo.InvariantCulture);
    /// <summary>Timestamp typed; PowerShell shows it as the hidden property TimestampValue (CalicoBpf.Types.ps1xml).</summary>
    internal TimeSpan? TimestampValue { get; init; }
    /// <summary>Wall-clock time of the line (UTC), from the timestamp and the node's clocks.</summary>
    public DateTime? Time { get; init; }
    /// <summary>The Calico tag as printed (eth0------------I).</summary>
    public string? Tag { get; init; }
    public string? Interface { get; init; }
    public TraceDirection Direction { get; init; }
    /// <summary>The line came from an IPv6 program ("IPv6 " before the tag).</summary>
    public bool IPv6 { get; init; }
    /// <summary>The message after the tag (the whole text for lines of no known shape).</summary>
    public string Message { get; init; } = string.Empty;
    /// <summary>Final result lines: ALLOW or DENY.</summary>
    public string? Result { get; init; }
    /// <summary>Final result lines: the TC action (ALLOW) or the drop reason code (DENY).</summary>
    public int? Code { get; init; }
    /// <summary>Final result lines: the drop reason's name, from Calico's reasons.h.</summary>
    public string? Reason { get; init; }
    /// <summary>Final result lines: the program's execution time.</summary>
    public string? ExecutionTime => ExecutionTimeValue?.ToString("c", CultureInfo.InvariantCulture);
    /// <summary>ExecutionTime typed; PowerShell shows it as the hidden property ExecutionTimeValue (CalicoBpf.Types.ps1xml).</summary>
    internal TimeSpan? ExecutionTimeValue { get; init; }
    /// <summary>Final result lines: the program's execution time in nanoseconds, as printed.</summary>
    public long? ExecutionNanoseconds { get; init; }
    public string RawLine { get; init; } = string.Empty;

    public override string ToString() => RawLine;
}
