namespace CalicoBpf.Commands;

/// <summary>
/// Streams the conntrack table's churn: the flows that are new, closed or gone since the sample before,
/// with Get-BpfConntrack's filters and -Resolve, until Ctrl+C (or -MaxSamples).
/// </summary>
[Cmdlet(VerbsCommon.Watch, "BpfConntrack", HelpUri = HelpUris.Base + "Watch-BpfConntrack.md")]
[OutputType(typeof(ConntrackChange))]
public sealed class WatchBpfConntrackCommand : ConntrackCmdletBase
{
    /// <summary>Watching takes the live nodes: no -Bundle (a bundle holds one moment).</summary>
    public override string? Bundle { get => null; set => throw new NotSupportedException(); }

    /// <summary>Seconds between samples; the first comes one interval after the baseline reading.</summary>
    [Parameter]
    [ValidateRange(1, 86400)]
    public int SampleInterval { get; set; } = 1;

    /// <summary>Stops after this many samples; without it, the watch goes on until Ctrl+C.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaxSamples { get; set; }

    protected override void ProcessRecord() => Gather(null);

    /// <summary>Every node (also those piped in) is watched at once, on one clock.</summary>
    protected override void EndProcessing()
    {
        UseGathered();
        if (!TryBuildQuery(TimeSpan.Zero, out ConntrackQuery query, out bool resolved))
        {
            return;
        }

        SampleEachNode(_ => new ConntrackWatcher(),
            (node, watcher, tick) => watcher.Sample(node, query, tick, Reporter, CancelToken).Select(c => resolved ? (object)Resolved(c) : c),
            TimeSpan.FromSeconds(SampleInterval), MaxSamples > 0 ? MaxSamples : null);
    }
}
