using System.Text.Json.Nodes;

namespace CalicoBpf.Commands;

/// <summary>
/// Runs a script block with bpfLogLevel Debug (and bpfLogFilters) set, and puts the previous values
/// back afterwards, also when the script block fails or is stopped with Ctrl+C.
/// </summary>
[Cmdlet(VerbsOther.Use, "FelixBpfDebugLog", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, HelpUri = HelpUris.Base + "Use-FelixBpfDebugLog.md")]
[OutputType(typeof(object))]
public sealed class UseFelixBpfDebugLogCommand : CalicoBpfCmdletBase
{
    /// <summary>The script block to run while Debug logging is on; its output is this cmdlet's output, as it comes.</summary>
    [Parameter(Mandatory = true, Position = 0)]
    public ScriptBlock ScriptBlock { get; set; } = null!;

    /// <summary>Debug logging on these nodes only (their node.NAME objects); without it, cluster-wide (default).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NodeNameCompleter))]
    public string[]? Node { get; set; }

    /// <summary>A pcap filter expression (tcp port 80, host 10.65.0.5): only packets it matches are logged (bpfLogFilters all).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Filter { get; set; }

    protected override void EndProcessing()
    {
        var felix = new FelixConfigClient(Cluster, CancelToken);
        List<string> names = Node is null ? new List<string> { "default" } : SelectNodes(Node, needsCalicoNode: false).Select(n => "node." + n.Node).ToList();
        if (names.Count == 0)
        {
            return;
        }

        var debug = new List<(FelixField, JsonNode?)> { (FelixFields.Find("bpfLogLevel")!, JsonValue.Create("Debug")) };
        if (Filter is not null)
        {
            debug.Add((FelixFields.Find("bpfLogFilters")!, new JsonObject { ["all"] = Filter }));
        }

        // What to put back: each object's previous values (or, for a node.NAME made here, the object gone).
        var restore = new List<(string Name, bool Created, List<(FelixField, JsonNode?)> Values)>();
        try
        {
            foreach (string name in names)
            {
                FelixChangePlan plan;
                try
                {
                    plan = Api(() => felix.Plan(name, debug, create: name != "default"), name);
                }
                catch (FelixValidationException ex)
                {
                    ThrowTerminatingError(new ErrorRecord(ex, "InvalidFelixValue", ErrorCategory.InvalidArgument, name));
                    return;
                }

                if (!ShouldProcess($"FelixConfiguration {name} ({plan.Resource.GroupVersion})",
                        $"{string.Join(", ", plan.Changes.Select(c => c.ToString()))} while the script block runs, then back"))
                {
                    return; // -WhatIf: nothing changed, the script block does not run
                }

                if (plan.Changes.Count > 0)
                {
                    Api(() => felix.Apply(plan, dryRun: false), name);
                }

                restore.Add((name, !plan.Exists, plan.Changes.Select(c => (c.Field, c.Old)).ToList()));
            }

            WriteWarning("bpfLogLevel is Debug while the script block runs: every BPF program logs every packet it handles to the trace pipe, a significant performance cost.");
            SteppablePipeline run = ScriptBlock.Create("param($__block) & $__block").GetSteppablePipeline(CommandOrigin.Internal, new object[] { ScriptBlock });
            run.Begin(this);
            run.End();
        }
        finally
        {
            Restore(restore);
        }
    }

    /// <summary>Puts the previous values back (a node.NAME made here is deleted), whatever happened; never on the stopped pipeline's token.</summary>
    private void Restore(List<(string Name, bool Created, List<(FelixField, JsonNode?)> Values)> restore)
    {
        var felix = new FelixConfigClient(Cluster, CancellationToken.None);
        foreach ((string name, bool created, List<(FelixField, JsonNode?)> values) in restore)
        {
            try
            {
                if (created)
                {
                    Cluster.DeleteResource(felix.Resource, name, CancellationToken.None);
                }
                else if (values.Count > 0)
                {
                    FelixChangePlan back = felix.Plan(name, values, create: false);
                    if (back.Changes.Count > 0)
                    {
                        felix.Apply(back, dryRun: false);
                    }
                }
            }
            catch (Exception ex) when (ex is ClusterException or FelixConflictException or FelixValidationException)
            {
                string previous = string.Join(", ", values.Select(v => $"{v.Item1.Json}: {FelixBpfConfig.ShowValue(v.Item2)}"));
                WriteError(new ErrorRecord(ex, "DebugLogNotRestored", ErrorCategory.WriteError, name)
                {
                    ErrorDetails = new ErrorDetails($"FelixConfiguration {name} could not be put back ({ex.Message}). Set it back by hand: {(created ? "delete it" : previous)}."),
                });
            }
        }
    }
}
