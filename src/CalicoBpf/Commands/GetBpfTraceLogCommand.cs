using CalicoBpf.Trace;

namespace CalicoBpf.Commands;

/// <summary>
/// The eBPF programs' debug log (bpfLogLevel Debug) from the kernel trace buffer, parsed. Without
/// -Follow it reads what the buffer holds and consumes nothing; -Follow streams the trace pipe.
/// </summary>
[Cmdlet(VerbsCommon.Get, "BpfTraceLog", DefaultParameterSetName = SnapshotSet, HelpUri = HelpUris.Base + "Get-BpfTraceLog.md")]
[OutputType(typeof(TraceLogEntry))]
public sealed class GetBpfTraceLogCommand : NodeCmdletBase
{
    private const string SnapshotSet = "Snapshot";
    private const string FollowSet = "Follow";

    /// <summary>Streams new lines from trace_pipe until Ctrl+C (consumes them, as tc exec bpf debug does).</summary>
    [Parameter(Mandatory = true, ParameterSetName = FollowSet)]
    public SwitchParameter Follow { get; set; }

    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
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

    protected override void BeginProcessing()
    {
        if (Follow && Bundle is not null)
        {
            ThrowTerminatingError(new ErrorRecord(new PSInvalidOperationException(
                "-Follow streams the live trace pipe; a bundle holds the buffer as it was. Drop -Follow to read the bundle's lines, or -Bundle to follow the live node."),
                "BundleIsOneMoment", ErrorCategory.InvalidOperation, Bundle));
        }
    }

    protected override void ProcessRecord()
    {
        string? dir = TracingPath is null ? null : Node is null ? GetUnresolvedProviderPathFromPSPath(TracingPath) : TracingPath;
        Func<string, bool>? ifaceFilter = WildcardFilter(Interface);
        bool Wanted(TraceLogEntry e) =>
            (ifaceFilter is null || (e.Interface is not null && ifaceFilter(e.Interface)))
            && (Direction is null || Direction.Contains(e.Direction));

        ForEachNode(node => Read(node, dir, Wanted));
    }

    private IEnumerable<TraceLogEntry> Read(INodeDataplane node, string? dir, Func<TraceLogEntry, bool> wanted)
    {
        ClockSample clock = node.SampleClock();
        CalicoRelease release = ReleaseInference.Of(node, Reporter).Release;
        // Time is the line's stamp on the node's monotonic clock (the one its wall clock is read with):
        // the buffer's own clock may run apart from it, by milliseconds to seconds, or count from 1970 (tai).
        long offset = node.TraceClockOffset(dir, CancelToken) ?? 0;
        IEnumerable<TraceLogEntry> entries = node.ReadTraceLines(Follow, dir, CancelToken)
            .Select(line => TraceLogParser.Parse(line, node.Node, clock, release, offset))
            .Where(wanted);
        if (Follow || Last <= 0)
        {
            return entries;
        }

        var last = new Queue<TraceLogEntry>(Last);
        foreach (TraceLogEntry e in entries)
        {
            if (last.Count == Last)
            {
                last.Dequeue();
            }

            last.Enqueue(e);
        }

        return last;
    }
}
