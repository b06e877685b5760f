using CalicoBpf.Transport;

namespace CalicoBpf.Sampling;

/// <summary>
/// Get-BpfProgramStatistic: the programs attached to the node's interfaces (TC, TCX and netkit, as
/// Get-BpfInterface lists them), measured over a window with the kernel's program statistics
/// (<see cref="INodeHost.MeasurePrograms"/>, which turns them on for the window only).
/// </summary>
public static class ProgramStatistics
{
    /// <param name="calicoOnly">Only Calico's programs (cali* names), as Felix attaches them.</param>
    public static IEnumerable<ProgramStatistic> Measure(INodeDataplane node, Func<string, bool>? interfaceFilter, bool calicoOnly, TimeSpan window,
        IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        reporter ??= NullReporter.Instance;
        AttachmentListing listing = node.ListAttachments();
        if (listing.UnseenReason is { } why)
        {
            reporter.Warning($"{node.Node}: {why}");
        }

        List<ProgramAttachment> attached = listing.Attachments
            .Where(a => (!calicoOnly || a.IsCalico) && (interfaceFilter is null || interfaceFilter(a.Interface)))
            .OrderBy(a => a.Interface, StringComparer.Ordinal).ThenBy(a => a.Hook).ThenBy(a => a.ProgramId)
            .ToList();
        if (attached.Count == 0)
        {
            reporter.Verbose($"No {(calicoOnly ? "Calico " : string.Empty)}programs attached to the interfaces asked for on {node.Node}: nothing to measure.");
            return Array.Empty<ProgramStatistic>();
        }

        reporter.Verbose($"Turning the kernel's BPF run-time statistics on for {window.TotalSeconds:0.###} s on {node.Node} to measure {attached.Count} program(s).");
        ProgramRunWindow runs = node.MeasurePrograms(attached.Select(a => a.ProgramId).Distinct().ToList(), window, cancellationToken);
        var stats = new List<ProgramStatistic>();
        foreach (ProgramAttachment a in attached)
        {
            if (!runs.Before.TryGetValue(a.ProgramId, out ProgramRun before) || !runs.After.TryGetValue(a.ProgramId, out ProgramRun after))
            {
                reporter.Verbose($"Program {a.ProgramId} on {a.Interface} was replaced during the window (Felix reattached it): not measured.");
                continue;
            }

            ulong count = after.RunCount - before.RunCount;
            ulong time = after.RunTimeNanoseconds - before.RunTimeNanoseconds;
            stats.Add(new ProgramStatistic
            {
                Node = node.Node,
                Interface = a.Interface,
                IfIndex = a.IfIndex,
                Hook = a.Hook,
                Kind = a.Kind,
                ProgramId = a.ProgramId,
                ProgramName = a.ProgramName,
                IsCalico = a.IsCalico,
                Runs = count,
                RunsPerSecond = runs.Elapsed > TimeSpan.Zero ? count / runs.Elapsed.TotalSeconds : 0,
                RunTimeValue = TimeSpan.FromTicks((long)(time / 100)),
                AverageNanoseconds = count == 0 ? null : (double)time / count,
                WindowValue = runs.Elapsed,
            });
        }

        if (runs.WereEnabled)
        {
            reporter.Verbose($"The kernel's BPF statistics were already on on {node.Node}; they stay on.");
        }

        return stats;
    }
}
