namespace CalicoBpf.Commands;

/// <summary>
/// What Calico's programs cost: run count and run time per program, interface and hook over a window,
/// from the kernel's program statistics (turned on for the window only); with -FelixProfiling, Felix's
/// own profiling samples (bpfProfiling), read without deleting them.
/// </summary>
[Cmdlet(VerbsCommon.Get, "BpfProgramStatistic", DefaultParameterSetName = KernelSet, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium,
    HelpUri = HelpUris.Base + "Get-BpfProgramStatistic.md")]
[OutputType(typeof(ProgramStatistic), ParameterSetName = new[] { KernelSet })]
[OutputType(typeof(FelixProgramProfile), ParameterSetName = new[] { FelixSet })]
public sealed class GetBpfProgramStatisticCommand : MapCmdletBase
{
    /// <summary>Measuring takes a window of live time: no -Bundle (a bundle holds one moment).</summary>
    private const string KernelSet = "Kernel";
    private const string FelixSet = "Felix";

    /// <summary>Interface names, wildcards allowed; without it, every interface with programs attached.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string[]? Interface { get; set; }

    /// <summary>How long to measure (5s, 1m; a number is seconds): the kernel's statistics are on for this long only.</summary>
    [Parameter(Position = 1, ParameterSetName = KernelSet)]
    [DurationArgument]
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Also programs that are not Calico's (any tc, TCX or netkit program on the interfaces).</summary>
    [Parameter(ParameterSetName = KernelSet)]
    public SwitchParameter All { get; set; }

    /// <summary>Felix's own profiling samples (cali_profiling, bpfProfiling: Enabled) instead of the kernel's statistics; nothing is turned on.</summary>
    [Parameter(Mandatory = true, ParameterSetName = FelixSet)]
    public SwitchParameter FelixProfiling { get; set; }

    protected override void BeginProcessing()
    {
        if (ParameterSetName == KernelSet && (Window < TimeSpan.FromSeconds(1) || Window > TimeSpan.FromHours(1)))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentOutOfRangeException(nameof(Window), Window,
                $"-Window {ConntrackText.ShortDuration(Window)} is out of range: give 1s to 1h (the kernel's statistics cost a little on every packet while they are on)."),
                "WindowOutOfRange", ErrorCategory.InvalidArgument, Window));
        }
    }

    protected override void ProcessRecord()
    {
        Func<string, bool>? filter = WildcardFilter(Interface);
        if (FelixProfiling)
        {
            ReadEach(node => ProfilingMap.Read(node, filter, Reporter, CancelToken), Interface, "InterfaceNotFound",
                names => $"Felix profiled nothing on {names}: bpfProfiling is not Enabled, or no packet went through since. Run Get-BpfProgramStatistic -FelixProfiling without -Interface to list what it profiled.");
            return;
        }

        TimeSpan window = Window;
        bool calicoOnly = !All;
        if (Bundle is not null)
        {
            // The bundle's window (Export-CalicoBpfDiagnostic -MeasurePrograms), measured on the node as it was at its start; nothing is turned on.
            ForEachNode(node =>
            {
                BundleNode start = WindowStartOf(node).Start;
                start.RequireProgramMeasurement();
                return ProgramStatistics.Measure(start, filter, calicoOnly, window, Reporter, CancelToken);
            });
            return;
        }

        string action = $"Turn the kernel's BPF run-time statistics on for {ConntrackText.ShortDuration(window)} (kernel.bpf_stats_enabled), then back as they were";
        ForEachNode(node => ProgramStatistics.Measure(node, filter, calicoOnly, window, Reporter, CancelToken), node => ShouldProcess(node, action));
    }
}
