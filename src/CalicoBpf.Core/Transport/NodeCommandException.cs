namespace CalicoBpf.Transport;

/// <summary>A command on a node that failed (exit code), or did not finish (negative: the connection to it ended first).</summary>
public sealed class NodeCommandException : Exception
{
    public NodeCommandException(string node, IReadOnlyList<string> argv, int exitCode, string standardError)
        : base((exitCode < 0 ? $"{Describe(argv)} did not finish on {node}" : $"{Describe(argv)} failed on {node} with exit code {exitCode}")
            + (string.IsNullOrWhiteSpace(standardError) ? "." : ": " + standardError.Trim()))
    {
        Node = node;
        ExitCode = exitCode;
        StandardError = standardError;
    }

    /// <summary>The same failure again, from its message (a diagnostics bundle replays what a node answered).</summary>
    internal NodeCommandException(string node, string message, int exitCode, string standardError)
        : base(message)
    {
        Node = node;
        ExitCode = exitCode;
        StandardError = standardError;
    }

    public string Node { get; }
    public int ExitCode { get; }
    public string StandardError { get; }

    /// <summary>The command for messages: CalicoBpf's shell scripts by their name ($0: probe, dump ...), others as typed.</summary>
    private static string Describe(IReadOnlyList<string> argv) =>
        argv.Count > 3 && argv[0] == "sh" && argv[1] == "-c"
            ? $"The {argv[3]} script (sh -c)"
            : $"'{string.Join(' ', argv)}'";
}
