namespace CalicoBpf.Diagnostics;

/// <summary>One calico-node log line (reference 3.1): time, level, component, file, line, message and its fields.</summary>
public sealed record FelixLogLine(string Time, string Level, string Component, string Message, string Text)
{
    private static readonly Regex Line = new(
        @"^(?<t>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \[(?<l>\w+)\]\[\d+\] (?:(?<c>[\w-]+)/)?\S+ (?:\d+|<unknown>): (?<m>.*)$",
        RegexOptions.CultureInvariant | RegexOptions.Compiled);

    /// <summary>The line, or null for a line in another format (a continuation, another process).</summary>
    public static FelixLogLine? Parse(string text)
    {
        Match m = Line.Match(text.TrimEnd('\r'));
        return m.Success ? new FelixLogLine(m.Groups["t"].Value, m.Groups["l"].Value, m.Groups["c"].Value, m.Groups["m"].Value, text.TrimEnd('\r')) : null;
    }

    /// <summary>A field's value (error=..., iface=...): error= is unquoted to the end of the line, others end at a space or are Go-quoted.</summary>
    public string? Field(string name)
    {
        int at = Message.IndexOf(" " + name + "=", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        string rest = Message[(at + name.Length + 2)..];
        if (name == "error")
        {
            return rest;
        }

        if (rest.StartsWith('"'))
        {
            int end = rest.IndexOf('"', 1);
            return end > 0 ? rest[1..end] : rest[1..];
        }

        int space = rest.IndexOf(' ');
        return space < 0 ? rest : rest[..space];
    }
}

/// <summary>What a calico-node log says about the eBPF dataplane (reference sections 3.2 to 3.4).</summary>
public static class FelixLog
{
    public const string Started = "BPF enabled, starting BPF endpoint manager and map manager.";
    public const string NotSupported = "BPF dataplane mode enabled but not supported by the kernel.  Disabling BPF mode.";
    public const string VerifierRejected = "BPF program load failed permanently (kernel BPF verifier rejected the program).";

    public static IEnumerable<FelixLogLine> Parse(string log) =>
        log.Split('\n').Select(FelixLogLine.Parse).Where(l => l is not null).Select(l => l!);

    /// <summary>The last line whose message starts with this text, or null.</summary>
    public static FelixLogLine? Last(IEnumerable<FelixLogLine> lines, string message) =>
        lines.LastOrDefault(l => l.Message.StartsWith(message, StringComparison.Ordinal));
}
