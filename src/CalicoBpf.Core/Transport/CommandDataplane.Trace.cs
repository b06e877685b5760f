using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

public sealed partial class CommandDataplane
{
    /// <summary>The tracing directory found in calico-node's mounts (<see cref="TracingDirectoryOf"/>); null: none found yet.</summary>
    private string? _tracingDirectory;

    /// <summary>
    /// The trace buffer (or, following, the pipe) of the node's kernel from inside calico-node, through
    /// a mounted tracefs, found in the container's mounts by the rule local mode uses
    /// (<see cref="TraceFs.TracingDirectory"/>). No real calico-node container has one (neither the
    /// manifest nor the operator mounts it, and the image has no mount): following then streams through
    /// bpftool prog tracelog, which mounts tracefs at /sys/kernel/tracing itself, where it stays until
    /// the container restarts. Reading the buffer without consuming it needs that mount; bpftool cannot
    /// do it without reading (and so consuming) the pipe, so a read before it says so.
    /// </summary>
    public IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken)
    {
        // The node's script checks that the file is there as it reads it: the directory is only
        // chosen here, from the mounts, in one exec before the read.
        string? dir = TracingDirectoryOf(tracingDirectory);
        string file = follow ? "trace_pipe" : "trace";
        string check = dir is not null && tracingDirectory is null ? "[ -f \"$1/" + file + "\" ] || exit 4; " : string.Empty;
        string script = dir is null && !follow ? "exit 4"
            : !follow ? check + "exec cat \"$1/trace\""
            : (dir is null ? "command -v bpftool >/dev/null || exit 3; " : check) + KeepAlive(dir is null ? "bpftool prog tracelog 2>/dev/null" : "cat \"$1/trace_pipe\"");
        // Ended by the caller's token (Ctrl+C) and by this dataplane's (a fan-out whose downstream stopped
        // it, Select-Object -First): a follow waits for the next line, which may never come.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cancellationToken);
        cancellationToken = stop.Token;
        using ICommandRun run = _runner.Start(new[] { "sh", "-c", script, "trace", dir ?? string.Empty }, cancellationToken);
        using var reader = new StreamReader(run.StandardOutput, Encoding.UTF8);
        string? line;
        while (!cancellationToken.IsCancellationRequested && (line = reader.ReadLine()) is not null)
        {
            if (line.Length > 0 && line[0] != '#')
            {
                yield return line;
            }
        }

        if (cancellationToken.IsCancellationRequested)
        {
            yield break;
        }

        try
        {
            run.Complete();
        }
        catch (NodeCommandException ex) when (ex.ExitCode is 3 or 4)
        {
            throw new BpfEnvironmentException(ex.ExitCode == 4
                    ? $"calico-node on {Node} has no tracefs mounted (no calico-node does until something mounts it), so its trace buffer cannot be read without consuming it. " +
                      $"Get-BpfTraceLog -Node {Node} -Follow streams it through bpftool prog tracelog, which mounts tracefs in the container (it stays until the container restarts); after that the buffer can be read too."
                    : $"The kernel trace buffer of {Node} is not reachable from calico-node: no tracefs is mounted there and there is no bpftool to mount one.",
                BpfEnvironmentProblem.NoTraceFs, "/sys/kernel/tracing", ex);
        }
    }

    /// <summary>
    /// A follow's reader behind a blank line a second: a quiet trace pipe is the normal case, and the
    /// session's silence watch (-TimeoutSec) must not take it for a node that stopped answering. The blank
    /// lines cannot split a trace line: a read of trace_pipe gives whole lines and at most a page less a
    /// byte, so cat's writes, and bpftool's line by line, are each one atomic pipe write (PIPE_BUF 4096).
    /// The lifeline ends the reader with the shell (one process group).
    /// </summary>
    private static string KeepAlive(string reader) =>
        reader + " & c=$!; while kill -0 $c 2>/dev/null; do sleep 1 & wait $!; printf '\\n'; done; wait $c";

    /// <summary>
    /// The trace clock's lead over the monotonic clock (<see cref="INodeTrace.TraceClockOffset"/>), in one
    /// exec: the buffer's "now ts" between two readings of /proc/timer_list's "now at". Null where
    /// calico-node has no tracefs (none does until something mounts it) or the clock is not in nanoseconds.
    /// </summary>
    public long? TraceClockOffset(string? tracingDirectory, CancellationToken cancellationToken)
    {
        if (TracingDirectoryOf(tracingDirectory) is not { } dir)
        {
            return null;
        }

        string text;
        try
        {
            text = RunText("sh", "-c", "grep -m1 'now at' /proc/timer_list; cat \"$1/per_cpu/cpu0/stats\"; grep -m1 'now at' /proc/timer_list", "offset", dir);
        }
        catch (NodeCommandException)
        {
            return null;
        }

        ulong[] mono = text.Split('\n')
            .Where(l => l.StartsWith("now at ", StringComparison.Ordinal))
            .Select(l => l.Split(' ') is { Length: > 2 } f && ulong.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out ulong ns) ? ns : 0UL)
            .ToArray();
        return mono.Length == 2 && mono[0] > 0 && mono[1] >= mono[0] && TraceFs.NowTimestamp(text) is { } now
            ? (long)now - (long)(mono[0] + ((mono[1] - mono[0]) / 2))
            : null;
    }

    /// <summary>
    /// The tracing directory asked for, or the one calico-node's mounts have (one exec, kept for this node's
    /// later questions: the trace lines and the clock's lead); null when there is none, asked again next
    /// time, since bpftool prog tracelog mounts one when it runs.
    /// </summary>
    private string? TracingDirectoryOf(string? tracingDirectory) =>
        tracingDirectory ?? (_tracingDirectory ??= ReadTextFile("/proc/self/mounts") is { } mounts ? TraceFs.TracingDirectory(mounts, _ => true) : null);
}
