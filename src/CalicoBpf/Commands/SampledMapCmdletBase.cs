namespace CalicoBpf.Commands;

/// <summary>
/// Map cmdlets that read counters and can sample them, as Get-Counter does: -SampleInterval,
/// -MaxSamples, -Continuous and -IncludeUnchanged in the Sample and Continuous parameter sets; without
/// them (the Snapshot set) the cmdlet reads once. The sampling loop is NodeCmdletBase's.
/// </summary>
public abstract class SampledMapCmdletBase : MapCmdletBase
{
    private protected const string SnapshotSet = "Snapshot";
    private protected const string SampleSet = "Sample";
    private protected const string ContinuousSet = "Continuous";

    /// <summary>Seconds between samples (Get-Counter's -SampleInterval); the first sample comes one interval after the baseline reading.</summary>
    [Parameter(ParameterSetName = SampleSet)]
    [Parameter(ParameterSetName = ContinuousSet)]
    [ValidateRange(1, 86400)]
    public int SampleInterval { get; set; } = 1;

    /// <summary>How many samples (default 1).</summary>
    [Parameter(ParameterSetName = SampleSet)]
    [ValidateRange(1, int.MaxValue)]
    public int MaxSamples { get; set; } = 1;

    /// <summary>Samples until Ctrl+C.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ContinuousSet)]
    public SwitchParameter Continuous { get; set; }

    /// <summary>Also what did not move (by default a sample holds only what moved or was reset).</summary>
    [Parameter(ParameterSetName = SampleSet)]
    [Parameter(ParameterSetName = ContinuousSet)]
    public SwitchParameter IncludeUnchanged { get; set; }

    /// <summary>-SampleInterval, -MaxSamples or -Continuous was given.</summary>
    private protected bool Sampling => ParameterSetName != SnapshotSet;

    /// <summary>Samples every node as the parameters say: <paramref name="sample"/> reads one node at one tick with its own sampler.</summary>
    private protected void Sample<TSampler, T>(Func<TimeProvider, TSampler> newSampler, Func<INodeDataplane, TSampler, SampleTick, IEnumerable<T>> sample)
        where TSampler : class =>
        SampleEachNode(newSampler, sample, TimeSpan.FromSeconds(SampleInterval), Continuous ? null : MaxSamples);
}
