namespace CalicoBpf.Transport;

/// <summary>A node's kernel trace buffer, where Calico's programs log (bpfLogLevel Debug).</summary>
public interface INodeTrace : INodeSource
{
    /// <summary>
    /// The kernel trace buffer of the node, line by line: what it holds now (consuming nothing), or
    /// with <paramref name="follow"/> the trace pipe until cancelled.
    /// </summary>
    IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken);
}
