namespace CalicoBpf.Commands;

/// <summary>
/// Every drop in a window, explained: per interface, hook and reason, how many packets, the deny rule
/// whose hit counter rose in the same window, the trace lines of the dropped packets when debug logging
/// is on, and with -Resolve the pods and services involved. -Follow repeats the window until Ctrl+C.
/// </summary>
[Cmdlet(VerbsCommon.Get, "BpfDrop", HelpUri = HelpUris.Base + "Get-BpfDrop.md")]
[OutputType(typeof(PacketDrop))]
public sealed class GetBpfDropCommand : MapCmdletBase
{
    /// <summary>Interface names, wildcards allowed; without it, every interface Calico counts.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string[]? Interface { get; set; }

    /// <summary>How long to watch: the counters are read at its start and at its end (10s, 1m; a number is seconds).</summary>
    [Parameter(Position = 1)]
    [DurationArgument]
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Window after window until Ctrl+C; each window's drops are written as it ends.</summary>
    [Parameter]
    public SwitchParameter Follow { get; set; }

    /// <summary>Names the pod behind each workload interface and the pods and services of traced packets (lists the cluster's pods and services once).</summary>
    [Parameter]
    public SwitchParameter Resolve { get; set; }

    /// <summary>Where Felix writes its policy debug files, which name the rules.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string PolicyDebugPath { get; set; } = PolicyDebug.DefaultDirectory;

    /// <summary>Where tracefs is mounted, when it cannot be found in /proc/self/mounts.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? TracingPath { get; set; }

    protected override void BeginProcessing()
    {
        if (Window < TimeSpan.FromSeconds(1) || Window > TimeSpan.FromDays(1))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentOutOfRangeException(nameof(Window), Window,
                $"-Window {ConntrackText.ShortDuration(Window)} is out of range: give 1s to 1d (the counters are read at its start and its end)."),
                "WindowOutOfRange", ErrorCategory.InvalidArgument, Window));
        }
    }

    protected override void ProcessRecord() => Gather(Interface);

    /// <summary>Every node (also those piped in) is watched at once, on one clock.</summary>
    protected override void EndProcessing()
    {
        string[]? interfaces = UseGathered();
        bool local = IsLocal;
        string policy = local ? GetUnresolvedProviderPathFromPSPath(PolicyDebugPath) : PolicyDebugPath;
        string? tracing = TracingPath is null ? null : local ? GetUnresolvedProviderPathFromPSPath(TracingPath) : TracingPath;
        if (Bundle is not null && MyInvocation.BoundParameters.ContainsKey(nameof(Window)))
        {
            WriteWarning("-Window is not used with -Bundle: the drops are those of the window the bundle recorded (Export-CalicoBpfDiagnostic -Window).");
        }

        WorkloadIndex? workloads = Resolve ? Api(() => Cluster.LoadWorkloads(CancelToken)) : null;
        var query = new DropQuery(WildcardFilter(interfaces), policy, tracing, workloads);
        SampleEachNode(time => new DropSampler(time), (node, sampler, tick) => sampler.Sample(node, tick, query, Reporter, CancelToken),
            Window, Follow ? null : 1);
    }
}
