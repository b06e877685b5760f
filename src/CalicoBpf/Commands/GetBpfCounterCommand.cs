namespace CalicoBpf.Commands;

/// <summary>
/// Reads Calico's per-interface packet counters (what calico-bpf counters dump shows); with
/// -SampleInterval, -MaxSamples or -Continuous, how they move: per interface, hook and counter, the
/// rise since the sample before and its rate, as Get-Counter samples.
/// </summary>
[Cmdlet(VerbsCommon.Get, "BpfCounter", DefaultParameterSetName = SnapshotSet, HelpUri = HelpUris.Base + "Get-BpfCounter.md")]
[OutputType(typeof(InterfaceCounter), ParameterSetName = new[] { SnapshotSet })]
[OutputType(typeof(CounterSample), ParameterSetName = new[] { SampleSet, ContinuousSet })]
public sealed class GetBpfCounterCommand : SampledMapCmdletBase
{
    /// <summary>Interface names, wildcards allowed.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string[]? Interface { get; set; }

    protected override void ProcessRecord()
    {
        Func<string, bool>? filter = WildcardFilter(Interface);
        if (!Sampling)
        {
            ReadEach(node => CounterReader.Read(node, filter, Reporter, CancelToken), Interface, "InterfaceNotFound",
                names => $"Calico keeps no counters for interface {names}: no Calico program is attached there. Run Get-BpfCounter without -Interface to list the interfaces it counts.");
            return;
        }

        Gather(Interface);
    }

    protected override void EndProcessing()
    {
        if (!Sampling)
        {
            return;
        }

        Func<string, bool>? filter = WildcardFilter(UseGathered());
        bool unchanged = IncludeUnchanged;
        Sample(time => new CounterSampler(time), (node, sampler, tick) => sampler.Sample(CounterReader.Read(node, filter, Reporter, CancelToken), tick, unchanged));
    }
}
