using CalicoBpf.Cluster;
using CalicoBpf.Maps;

namespace CalicoBpf.Diagnostics;

/// <summary>8. Debug logging left on costs performance.</summary>
public sealed class DebugLoggingCheck : Check
{
    public override string Id => "debug-logging";

    public override string Title => "BPF debug logging is off";

    /// <summary>Locally there is no FelixConfiguration to read: the kernel's trace buffer shows whether Calico's programs log.</summary>
    public override bool Local => true;

    public override IEnumerable<CheckResult> Run(CheckContext context) => context.Local is { } local ? new[] { TraceBuffer(local) } : PerNode(context, node =>
    {
        FelixEffectiveValue level = context.Effective(node)["bpfLogLevel"];
        if (!level.Value.Equals("Debug", StringComparison.OrdinalIgnoreCase))
        {
            return Result(CheckStatus.Pass, $"bpfLogLevel is {(level.Value.Length == 0 ? "Off" : level.Value)}.", node.Node, $"bpfLogLevel {level.Value} ({level.SourceDetail})");
        }

        string fix = level.Source switch
        {
            FelixValueSource.NodeConfiguration => $"Set-FelixBpfConfig -Node {node.Node} -Clear bpfLogLevel",
            FelixValueSource.GlobalConfiguration => "Set-FelixBpfConfig -Clear bpfLogLevel",
            FelixValueSource.SelectorConfiguration => $"Set-FelixBpfConfig -Name {level.SourceDetail["FelixConfiguration ".Length..]} -Clear bpfLogLevel",
            _ => $"Remove {level.SourceDetail}",
        };
        return Result(CheckStatus.Warning, "bpfLogLevel is Debug: every BPF program logs every packet to the trace pipe, a significant performance cost.", node.Node,
            $"bpfLogLevel Debug ({level.SourceDetail})", fix);
    });

    private CheckResult TraceBuffer(Transport.INodeDataplane local)
    {
        int lines;
        try
        {
            lines = DebugTrace.CalicoLines(local, CancellationToken.None);
        }
        catch (Interop.BpfEnvironmentException ex) when (ex.Problem == Interop.BpfEnvironmentProblem.NotRoot)
        {
            return Failure(ex, local.Node);
        }
        catch (Interop.BpfException ex)
        {
            // The message says what the trace buffer lacks ("The kernel trace buffer is not reachable: ...").
            return Result(CheckStatus.Skipped, "Not checked: " + ex.Message, local.Node);
        }

        return lines == 0
            ? Result(CheckStatus.Pass, "No Calico program line in the kernel's trace buffer: BPF debug logging is off.", local.Node, "0 Calico lines in the trace buffer")
            : Result(CheckStatus.Warning, $"The kernel's trace buffer holds {lines} lines from Calico's programs: bpfLogLevel is (or was lately) Debug, a significant performance cost.",
                local.Node, $"{lines} Calico lines in the trace buffer", "Set-FelixBpfConfig -Node " + local.Node + " -Clear bpfLogLevel (from a machine with cluster access)");
    }
}

/// <summary>8 (local part). Calico lines in the trace buffer mean its programs log (bpfLogLevel Debug, now or lately).</summary>
public static class DebugTrace
{
    public static int CalicoLines(Transport.INodeDataplane node, CancellationToken cancellationToken) =>
        node.ReadTraceLines(follow: false, tracingDirectory: null, cancellationToken)
            .Select(l => Trace.TraceLogParser.Parse(l, node.Node, release: ReleaseInference.Of(node).Release))
            .Count(e => e.Direction != TraceDirection.None);
}
