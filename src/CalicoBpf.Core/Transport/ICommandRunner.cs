namespace CalicoBpf.Transport;

/// <summary>A command's run on a node: its stdout as a stream, and its outcome once read.</summary>
public interface ICommandRun : IDisposable
{
    Stream StandardOutput { get; }

    /// <summary>Waits for the command to end; throws <see cref="NodeCommandException"/> when it failed.</summary>
    void Complete();
}

/// <summary>Runs commands on a node: locally as processes, or in calico-node through Kubernetes exec.</summary>
public interface ICommandRunner
{
    string Node { get; }

    /// <param name="standardInput">
    /// Bytes for the command's stdin (empty: none). The command's argv travels in the exec request's
    /// URL, which proxies cap at 8 to 16 KB; bulk data goes here instead. Where the transport can say
    /// so, stdin ends after them (a local pipe closes; exec sends v5's close signal), but exec over v4
    /// cannot: a script reading stdin must know how much to read and never wait for its end.
    /// </param>
    ICommandRun Start(IReadOnlyList<string> argv, CancellationToken cancellationToken, ReadOnlyMemory<byte> standardInput = default);
}
