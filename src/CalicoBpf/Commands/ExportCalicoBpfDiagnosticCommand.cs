using CalicoBpf.Diagnostics;

namespace CalicoBpf.Commands;

/// <summary>
/// Captures the dataplane of this machine, or of nodes of a cluster, into one zip that every Get-Bpf*
/// cmdlet, Get-CalicoNode, Get-FelixBpfConfig and Test-CalicoEbpf read offline with -Bundle: each
/// node's raw facts and map entries, its objects as typed JSON, the Felix configuration, calico-node
/// logs and the checks' results, with a manifest of what could not be captured. Nothing on the nodes
/// or in the cluster changes.
/// </summary>
[Cmdlet(VerbsData.Export, "CalicoBpfDiagnostic", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Low, HelpUri = HelpUris.Base + "Export-CalicoBpfDiagnostic.md")]
[OutputType(typeof(DiagnosticBundle))]
public sealed class ExportCalicoBpfDiagnosticCommand : MapCmdletBase
{
    /// <summary>The zip to write (its directory must exist).</summary>
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary>The most the bundle's entries may take, stored (compressed): typed JSON is left out first, then the largest maps' entries.</summary>
    [Parameter]
    [ValidateRange(1L << 16, long.MaxValue)]
    public long MaxSize { get; set; } = 2L << 30;

    /// <summary>Lines of each calico-node log kept (its last ones).</summary>
    [Parameter]
    [ValidateRange(0, 1_000_000)]
    public int LogLines { get; set; } = 10_000;

    /// <summary>Lines of each node's kernel trace buffer kept (its last ones; only a node with bpfLogLevel Debug has any).</summary>
    [Parameter]
    [ValidateRange(0, 1_000_000)]
    public int TraceLines { get; set; } = 10_000;

    /// <summary>How long each node's counters are watched before it is captured, so that Get-BpfDrop -Bundle says what dropped then (5s, 1m; a number is seconds; 0: no window).</summary>
    [Parameter]
    [DurationArgument]
    public TimeSpan Window { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Leaves out Test-CalicoEbpf's checks (they ask the cluster and the nodes some more).</summary>
    /// <summary>Also measure the nodes' attached programs over the window (Get-BpfProgramStatistic -Bundle): turns the kernel's BPF run-time statistics on for it, then back as they were.</summary>
    [Parameter]
    public SwitchParameter MeasurePrograms { get; set; }

    [Parameter]
    public SwitchParameter NoCheck { get; set; }

    /// <summary>Replaces a file at -Path.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>A bundle is made of live nodes: no -Bundle.</summary>
    public override string? Bundle { get => null; set => throw new NotSupportedException(); }

    protected override void ProcessRecord() => Gather(null);

    protected override void EndProcessing()
    {
        UseGathered();
        string path = GetUnresolvedProviderPathFromPSPath(Path);
        if (File.Exists(path) && !Force)
        {
            ThrowTerminatingError(new ErrorRecord(new IOException($"{path} exists. Give -Force to replace it, or another -Path."), "BundleExists", ErrorCategory.ResourceExists, path));
        }

        if (Directory.Exists(path))
        {
            ThrowTerminatingError(new ErrorRecord(new IOException($"{path} is a directory: give -Path the name of the zip to write."), "BundlePathIsDirectory", ErrorCategory.InvalidArgument, path));
        }

        if (MeasurePrograms && Window <= TimeSpan.Zero)
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentException("-MeasurePrograms measures the programs over the window: give a -Window above 0."),
                "MeasureWithoutWindow", ErrorCategory.InvalidArgument, Window));
        }

        string what = (IsLocal ? "this machine's dataplane" : $"the dataplanes of node(s) {string.Join(", ", NodePatterns)}")
            + (MeasurePrograms ? $", turning the kernel's BPF run-time statistics on for {ConntrackText.ShortDuration(Window)} on each (then back as they were)" : string.Empty);
        if (!ShouldProcess(path, $"Write a diagnostics bundle of {what}"))
        {
            return;
        }

        if (Window < TimeSpan.Zero || Window > TimeSpan.FromHours(1))
        {
            ThrowTerminatingError(new ErrorRecord(new ArgumentOutOfRangeException(nameof(Window), Window,
                $"-Window {ConntrackText.ShortDuration(Window)} is out of range: give 0 (no window) to 1h."), "WindowOutOfRange", ErrorCategory.InvalidArgument, Window));
        }

        var options = new ExportOptions { MaxSize = MaxSize, LogLines = LogLines, TraceLines = TraceLines, Checks = !NoCheck, Window = Window, MeasurePrograms = MeasurePrograms };
        string version = MyInvocation.MyCommand.Module?.Version?.ToString() ?? typeof(ExportCalicoBpfDiagnosticCommand).Assembly.GetName().Version?.ToString() ?? "0.0";
        DiagnosticExport? export = null;
        Run(() =>
        {
            try
            {
                export = new DiagnosticExport(path, IsLocal ? null : Cluster, options, version);
                if (IsLocal)
                {
                    CaptureLocal(export);
                }
                else
                {
                    CaptureNodes(export);
                }

                if (!NoCheck)
                {
                    WriteProgress(new ProgressRecord(2, "Export-CalicoBpfDiagnostic", "Running Test-CalicoEbpf's checks"));
                    export.RunChecks(Checks.All, CancelToken);
                    WriteProgress(new ProgressRecord(2, "Export-CalicoBpfDiagnostic", "Checks done") { RecordType = ProgressRecordType.Completed });
                }

                export.WriteFacts();
                WriteProgress(new ProgressRecord(3, "Export-CalicoBpfDiagnostic", "Writing the objects as typed JSON"));
                export.WriteObjects(Environment.ProcessorCount, Reporter, CancelToken);
                WriteProgress(new ProgressRecord(3, "Export-CalicoBpfDiagnostic", "Writing the zip") { PercentComplete = 90 });
                DiagnosticBundle bundle = export.Complete(CancelToken);
                WriteProgress(new ProgressRecord(3, "Export-CalicoBpfDiagnostic", "Done") { RecordType = ProgressRecordType.Completed });
                WriteObject(bundle);
            }
            finally
            {
                export?.Dispose();
            }
        }, path);
    }

    private void CaptureLocal(DiagnosticExport export)
    {
        string name = LocalDataplane.LocalNodeName();
        var identity = new CalicoNode { Node = name, KernelVersion = KernelInfo.Release };
        export.StartWindow(name, () => OpenLocalNode(), Reporter, CancelToken);
        BundleNodeEntry entry = export.CaptureNode(name, identity, () => OpenLocalNode(), Reporter, CancelToken);
        Report(entry);
    }

    private void CaptureNodes(DiagnosticExport export)
    {
        RecordingCluster cluster = export.Cluster!;
        List<CalicoNode> targets = NodeSelection.Select(Api(() => cluster.ListNodes(CancelToken)), NodePatterns, needsCalicoNode: true, WriteError, WriteWarning);
        var fanOut = new NodeFanOut(this, ThrottleLimit, CancelToken, (node, token) => throw new InvalidOperationException("not used"), UseWorkerReporter,
            (node, ex) =>
            {
                export.NodeFailed(node.Node, node, ex);
                return ErrorRecords.FromNode(node, ex);
            });
        export.CaptureCluster(Api(() => cluster.ListNodes(CancelToken)), CancelToken);
        // Every node's window begins first, so that the windows run at once and the captures end them.
        fanOut.ReadNodes(targets, (node, token) =>
        {
            export.StartWindow(node.Node, () => OpenNode(cluster, node, CancelToken), Reporter, token);
            return Array.Empty<BundleNodeEntry>();
        }, Report);
        fanOut.ReadNodes(targets, (node, token) => new[]
        {
            export.CaptureNode(node.Node, node, () => OpenNode(cluster, node, CancelToken), Reporter, token),
        }, Report);
    }

    /// <summary>A node that could not be read is an error (the bundle says so too); the rest is verbose.</summary>
    private void Report(BundleNodeEntry entry)
    {
        if (entry.Status == "Failed")
        {
            WriteError(new ErrorRecord(new BundleException($"{entry.Node} could not be captured: {entry.Error}"), "NodeNotCaptured", ErrorCategory.ReadError, entry.Node));
            return;
        }

        foreach (string omitted in entry.Omitted)
        {
            WriteWarning($"{entry.Node}: the entries of {omitted}");
        }

        WriteVerbose($"{entry.Node}: {entry.Status}, {string.Join(", ", entry.Families.Select(f => f.Problem.Length == 0 ? $"{f.Family} {f.Objects}" : $"{f.Family} (none: {f.Problem})"))}.");
    }
}
