using System.Xml.Linq;
using CalicoBpf.Diagnostics;

namespace CalicoBpf.Commands;

/// <summary>Runs every check of Calico's eBPF troubleshooting guide, cluster-wide or on this machine, one result per check and node.</summary>
[Cmdlet(VerbsDiagnostic.Test, "CalicoEbpf", DefaultParameterSetName = ClusterSet, HelpUri = HelpUris.Base + "Test-CalicoEbpf.md")]
[OutputType(typeof(CheckResult))]
[OutputType(typeof(bool))]
public sealed class TestCalicoEbpfCommand : CalicoBpfCmdletBase
{
    private const string ClusterSet = "Cluster";
    private const string LocalSet = "Local";
    private readonly List<IDisposable> _opened = new();

    /// <summary>Only these checks (ids, wildcards): access, bpf-requested, bpf-running, ...</summary>
    [Parameter(Position = 0)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(CheckIdCompleter))]
    public string[]? Check { get; set; }

    /// <summary>Per-node checks on these nodes only (wildcards); cluster-wide checks run anyway.</summary>
    [Parameter(ParameterSetName = ClusterSet, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NodeNameCompleter))]
    public string[]? Node { get; set; }

    /// <summary>The node-local checks on this machine, without a cluster.</summary>
    [Parameter(Mandatory = true, ParameterSetName = LocalSet)]
    public SwitchParameter Local { get; set; }

    /// <summary>With -Local: where Calico pins its maps.</summary>
    [Parameter(ParameterSetName = LocalSet)]
    [ValidateNotNullOrEmpty]
    public string PinPath { get; set; } = MapCatalog.DefaultPinDirectory;

    /// <summary>Returns one boolean: true when no check failed.</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    /// <summary>Also writes the results as a JUnit XML file (one test case per check and node), for CI.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? JUnitPath { get; set; }

    /// <summary>A diagnostics bundle (Export-CalicoBpfDiagnostic's zip) to read instead of the live cluster.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Bundle { get; set; }

    private protected override string? BundlePath => Bundle;

    protected override void EndProcessing()
    {
        var nodeFilter = WildcardFilter(Node);
        // A bundle made on one machine holds that machine only: its checks are -Local's.
        bool local = Local || (Bundle is not null && !OpenedBundle.HasCluster);
        CheckContext context = local
            ? new CheckContext(null, null, Bundle is null ? OpenLocal() : OpenBundledLocal(), CancelToken)
            : new CheckContext(Cluster, OpenNode, null, CancelToken) { NodeFilter = n => (nodeFilter is null || nodeFilter(n.Node)) && (Bundle is null || OpenedBundle.BundledNodes.Any(b => b.Node == n.Node)) };
        Func<string, bool>? selected = WildcardFilter(Check);
        List<Diagnostics.Check> checks = Checks.All.Where(c => (!local || c.Local) && (selected is null || selected(c.Id))).ToList();
        if (checks.Count == 0)
        {
            WriteError(new ErrorRecord(new ArgumentException($"No check matches -Check {string.Join(", ", Check ?? Array.Empty<string>())}. The checks: {string.Join(", ", Checks.All.Select(c => c.Id))}."),
                "CheckNotFound", ErrorCategory.ObjectNotFound, Check));
            return;
        }

        var results = new List<CheckResult>();
        try
        {
            var progress = new ProgressRecord(1, "Test-CalicoEbpf", "Starting");
            for (int i = 0; i < checks.Count; i++)
            {
                progress.StatusDescription = checks[i].Title;
                progress.PercentComplete = 100 * i / checks.Count;
                WriteProgress(progress);
                results.AddRange(Checks.Run(context, new[] { checks[i] }));
            }

            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }
        catch (OperationCanceledException) when (CancelToken.IsCancellationRequested)
        {
            return;
        }
        finally
        {
            foreach (IDisposable d in _opened)
            {
                d.Dispose();
            }
        }

        // Worst first, then in the guide's order.
        List<CheckResult> ordered = results.OrderBy(r => r.Status).ThenBy(r => checks.FindIndex(c => c.Id == r.Check)).ThenBy(r => r.Node, StringComparer.Ordinal).ToList();
        if (JUnitPath is not null)
        {
            string path = GetUnresolvedProviderPathFromPSPath(JUnitPath);
            WriteJUnit(path, ordered);
            WriteVerbose($"JUnit results written to {path}.");
        }

        if (Quiet)
        {
            WriteObject(ordered.All(r => r.Status != CheckStatus.Fail));
            return;
        }

        foreach (CheckResult r in ordered)
        {
            WriteObject(r);
        }
    }

    private INodeDataplane OpenLocal()
    {
        INodeDataplane local = new LocalDataplane(ResolvePinPath(PinPath));
        return local;
    }

    private INodeDataplane OpenNode(CalicoNode node)
    {
        INodeDataplane dataplane = Bundle is not null
            ? OpenedBundle.OpenNode(node.Node, null)
            : new CommandDataplane(Cluster.ExecRunner(node), MapCatalog.DefaultPinDirectory, CancelToken, node.CalicoRelease);
        _opened.Add((IDisposable)dataplane);
        return dataplane;
    }

    private INodeDataplane OpenBundledLocal()
    {
        // A local bundle holds one machine; -Local with a cluster's bundle works only where it holds one node.
        IReadOnlyList<CalicoNode> nodes = OpenedBundle.BundledNodes;
        if (nodes.Count != 1)
        {
            ThrowTerminatingError(new ErrorRecord(new PSArgumentException(
                $"-Local checks one machine, and {Bundle} holds {nodes.Count} nodes ({string.Join(", ", nodes.Take(5).Select(n => n.Node))}{(nodes.Count > 5 ? ", ..." : string.Empty)}). Drop -Local: every check runs on the bundle's nodes, and -Node picks some."),
                "BundleNodeAmbiguous", ErrorCategory.InvalidArgument, Bundle));
        }

        BundleNode node = OpenedBundle.OpenNode(nodes[0].Node, null);
        _opened.Add(node);
        return node;
    }

    /// <summary>JUnit XML: a test suite of one test case per result; Fail is a failure, Error an error, Skipped skipped, Warning passes with its message.</summary>
    internal static void WriteJUnit(string path, IReadOnlyList<CheckResult> results)
    {
        XElement Case(CheckResult r)
        {
            var e = new XElement("testcase",
                new XAttribute("classname", "CalicoEbpf." + r.Check),
                new XAttribute("name", r.Node.Length > 0 ? $"{r.Title} ({r.Node})" : r.Title));
            string detail = string.Join("\n", new[] { r.Message, r.Evidence.Length > 0 ? "Evidence: " + r.Evidence : null, r.Remediation.Length > 0 ? "Fix: " + r.Remediation : null }.Where(s => s is not null));
            switch (r.Status)
            {
                case CheckStatus.Fail:
                    e.Add(new XElement("failure", new XAttribute("message", r.Message), detail));
                    break;
                case CheckStatus.Error:
                    e.Add(new XElement("error", new XAttribute("message", r.Message), detail));
                    break;
                case CheckStatus.Skipped:
                    e.Add(new XElement("skipped", new XAttribute("message", r.Message)));
                    break;
                default:
                    e.Add(new XElement("system-out", $"{r.Status}: {detail}"));
                    break;
            }

            return e;
        }

        var suite = new XElement("testsuite",
            new XAttribute("name", "Test-CalicoEbpf"),
            new XAttribute("tests", results.Count),
            new XAttribute("failures", results.Count(r => r.Status == CheckStatus.Fail)),
            new XAttribute("errors", results.Count(r => r.Status == CheckStatus.Error)),
            new XAttribute("skipped", results.Count(r => r.Status == CheckStatus.Skipped)),
            new XAttribute("timestamp", DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)),
            results.Select(Case));
        // UTF-8 without a byte-order mark, as JUnit readers (and CI systems parsing the file) expect.
        using var writer = System.Xml.XmlWriter.Create(path, new System.Xml.XmlWriterSettings { Encoding = new System.Text.UTF8Encoding(false), Indent = true });
        new XDocument(new XElement("testsuites", suite)).Save(writer);
    }

    /// <summary>Tab completion of -Check with the check ids.</summary>
    private sealed class CheckIdCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            System.Management.Automation.Language.CommandAst commandAst, System.Collections.IDictionary fakeBoundParameters) =>
            Checks.All.Where(c => c.Id.StartsWith(wordToComplete, StringComparison.OrdinalIgnoreCase))
                .Select(c => new CompletionResult(c.Id, c.Id, CompletionResultType.ParameterValue, c.Title));
    }
}
