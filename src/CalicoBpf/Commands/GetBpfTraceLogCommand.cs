using System.Management.Automation;
using CalicoBpf.Interop;
using CalicoBpf.Trace;
using CalicoBpf.Transport;

namespace CalicoBpf.Commands;

/// <summary>
/// The eBPF programs' debug log (bpfLogLevel Debug) from the kernel trace buffer, parsed. Without
/// -Follow it reads what the buffer holds and consumes nothing; -Follow streams the trace pipe.
/// </summary>
[Cmdlet(VerbsCommon.Get, "BpfTraceLog", DefaultParameterSetName = SnapshotSet)]
[OutputType(typeof(TraceLogEntry))]
public sealed class GetBpfTraceLogCommand : CalicoBpfCmdletBase
{
    private const string SnapshotSet = "Snapshot";
    private const string FollowSet = "Follow";

    /// <summary>Streams new lines from trace_pipe until Ctrl+C (consumes them, as tc exec bpf debug does).</summary>
    [Parameter(Mandatory = true, ParameterSetName = FollowSet)]
    public SwitchParameter Follow { get; set; }

    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Interface { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public TraceDirection[]? Direction { get; set; }

    /// <summary>Only the last N matching lines of the buffer.</summary>
    [Parameter(ParameterSetName = SnapshotSet)]
    [ValidateRange(1, int.MaxValue)]
    public int Last { get; set; }

    /// <summary>Where tracefs is mounted, when it cannot be found in /proc/self/mounts.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? TracingPath { get; set; }

    protected override void ProcessRecord() => Run(() =>
    {
        string dir = TracingPath is null ? TraceFs.RequireTracingDirectory() : GetUnresolvedProviderPathFromPSPath(TracingPath);
        string node = LocalDataplane.LocalNodeName();
        ClockSample clock = KernelInfo.SampleClocks();
        Func<string, bool>? ifaceFilter = WildcardFilter(Interface);
        bool Wanted(TraceLogEntry e) =>
            (ifaceFilter is null || (e.Interface is not null && ifaceFilter(e.Interface)))
            && (Direction is null || Direction.Contains(e.Direction));

        if (Follow)
        {
            WriteVerbose($"Following {Path.Combine(dir, "trace_pipe")}; Ctrl+C stops.");
            foreach (string line in TraceFs.Follow(dir, CancelToken))
            {
                TraceLogEntry e = TraceLogParser.Parse(line, node, KernelInfo.SampleClocks());
                if (Wanted(e))
                {
                    WriteObject(e);
                }
            }

            return;
        }

        var last = Last > 0 ? new Queue<TraceLogEntry>(Last) : null;
        foreach (string line in TraceFs.ReadSnapshot(dir, CancelToken))
        {
            TraceLogEntry e = TraceLogParser.Parse(line, node, clock);
            if (!Wanted(e))
            {
                continue;
            }

            if (last is null)
            {
                WriteObject(e);
                continue;
            }

            if (last.Count == Last)
            {
                last.Dequeue();
            }

            last.Enqueue(e);
        }

        foreach (TraceLogEntry e in last ?? new Queue<TraceLogEntry>())
        {
            WriteObject(e);
        }
    }, TracingPath);
}
