namespace CalicoBpf.Transport;

/// <summary>A node's kernel trace buffer, where Calico's programs log (bpfLogLevel Debug).</summary>
public interface INodeTrace : INodeSource
{
    /// <summary>
    /// The kernel trace buffer of the node, line by line: what it holds now (consuming nothing), or
    /// with <paramref name="follow"/> the trace pipe until cancelled.
    /// </summary>
    IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken);

    /// <summary>
    /// How many nanoseconds the trace buffer's timestamps run ahead of the node's monotonic clock
    /// (<see cref="INodeHost.SampleClock"/>; negative: behind), so that a window timed by the one picks
    /// the lines stamped by the other (<see cref="Interop.TraceFs.ClockOffset"/>). Null when it cannot be
    /// read (no tracefs, a clock not in nanoseconds, a bundle made before it was recorded): the two are
    /// then taken as one clock.
    /// </summary>
    long? TraceClockOffset(string? tracingDirectory, CancellationToken cancellationToken);
}
