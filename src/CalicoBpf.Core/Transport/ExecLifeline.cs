namespace CalicoBpf.Transport;

/// <summary>
/// Ends a node's command when its exec session ends. A kubelet does not kill what an exec started
/// when the client goes away (Ctrl+C, a timeout, a dropped connection): a command that blocks
/// without writing (bpftool prog tracelog, cat trace_pipe, a stuck read) keeps running, and the next
/// line it reads is lost. What the kubelet does do is end the command's stdin (containerd closes an
/// exec's stdin when the stream's ends). So the command runs behind a small shell that holds stdin
/// open and kills the command's whole process group when stdin ends; the command itself reads
/// /dev/null. Commands fed through stdin need no lifeline: they end when their input does.
/// </summary>
public static class ExecLifeline
{
    /// <summary>
    /// The shell: job control (set -m) puts the command in a process group of its own, so that its
    /// children go with it; the shell's own stderr (where job control reports) is /dev/null, the
    /// command's is the exec's. Exit status: the command's (143 when the lifeline ended it).
    /// </summary>
    public const string Script =
        "set -m; exec 3<&0 4>&2 2>/dev/null; \"$@\" </dev/null 2>&4 3<&- 4>&- & c=$!; " +
        "{ while read -r _; do :; done; kill -TERM -$c; } <&3 3<&- 4>&- & w=$!; exec 3<&- 4>&-; wait $c; s=$?; kill $w; exit $s";

    /// <summary>argv run behind the lifeline (sh -c SCRIPT lifeline ARGV...); the exec must open stdin and send nothing on it.</summary>
    public static IReadOnlyList<string> Wrap(IReadOnlyList<string> argv) =>
        new[] { "sh", "-c", Script, "lifeline" }.Concat(argv).ToList();
}
