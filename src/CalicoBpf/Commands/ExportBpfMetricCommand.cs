using System.Collections.Concurrent;
using System.Text;

namespace CalicoBpf.Commands;

/// <summary>
/// Calico's counters, drops, rule hits and map fill as Prometheus text: to the pipeline (which
/// Invoke-RestMethod -Method Put can send to a Pushgateway), or to a file for node_exporter's textfile
/// collector (written whole, then renamed into place).
/// </summary>
[Cmdlet(VerbsData.Export, "BpfMetric", SupportsShouldProcess = true, DefaultParameterSetName = TextSet, HelpUri = HelpUris.Base + "Export-BpfMetric.md")]
[OutputType(typeof(string))]
public sealed class ExportBpfMetricCommand : MapCmdletBase
{
    private const string TextSet = "Text";
    private const string FileSet = "File";

    /// <summary>Writes the text to this file (for node_exporter's --collector.textfile.directory, a name ending in .prom), replacing it whole.</summary>
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = FileSet)]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary>Where Felix writes its policy debug files (which name the rules); without them, no rule metrics.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string PolicyDebugPath { get; set; } = PolicyDebug.DefaultDirectory;

    protected override void ProcessRecord() => Gather(null);

    /// <summary>Every node (also those piped in) goes into one exposition.</summary>
    protected override void EndProcessing()
    {
        UseGathered();
        string policy = IsLocal ? GetUnresolvedProviderPathFromPSPath(PolicyDebugPath) : PolicyDebugPath;
        var nodes = new ConcurrentBag<Metrics.NodeMetrics>();
        ForEachNode(node =>
        {
            nodes.Add(Collect(node, policy));
            return Array.Empty<object>();
        });
        string text = Metrics.PrometheusText.Write(nodes);
        switch (ParameterSetName)
        {
            case FileSet:
                string path = GetUnresolvedProviderPathFromPSPath(Path);
                if (ShouldProcess(path, $"Write {nodes.Count} node(s)' metrics ({text.Length} bytes)"))
                {
                    WriteWhole(path, text);
                }

                break;
            default:
                WriteObject(text);
                break;
        }
    }

    /// <summary>Reads what the metrics hold on one node; a part that cannot be read (no rules without policy debug files) is left out, said in verbose.</summary>
    private Metrics.NodeMetrics Collect(INodeDataplane node, string policy)
    {
        List<InterfaceCounter> counters = CounterReader.Read(node, null, Reporter, CancelToken).ToList();
        List<MapInfo> maps = MapInventory.List(node, null, true, Reporter, CancelToken).ToList();
        List<PolicyRule> rules = PolicyDebug.ReadAll(node, policy, null, includeIPv6: true, Reporter, CancelToken) ?? new List<PolicyRule>();
        if (rules.Count == 0)
        {
            Reporter.Verbose($"No rules in the policy debug files of {policy} on {node.Node}: no rule metrics.");
        }

        CalicoRelease release = ReleaseInference.Of(node, Reporter).Release;
        var reasons = CounterLayout.Definitions
            .Select(d => (d.Id, Words: CounterLayout.Reason(d.Id, release)))
            .Where(r => r.Words is not null)
            .ToDictionary(r => r.Id, r => r.Words!, StringComparer.Ordinal);
        return new Metrics.NodeMetrics(node.Node, counters, maps, rules, reasons);
    }

    /// <summary>The file replaced whole: written next to it, then renamed over it, so a collector never reads half of it.</summary>
    private void WriteWhole(string path, string text)
    {
        string temp = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".", "." + System.IO.Path.GetFileName(path) + "." + Environment.ProcessId + ".tmp");
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            File.Move(temp, path, overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            File.Delete(temp);
            WriteError(new ErrorRecord(ex, "MetricsFileNotWritten", ErrorCategory.WriteError, path)
            {
                ErrorDetails = new ErrorDetails($"The metrics could not be written to {path}: {ex.Message} Give a writable -Path (node_exporter's textfile directory)."),
            });
        }
    }
}
