using System.Collections.Concurrent;

namespace CalicoBpf.Commands;

/// <summary>
/// Sampling (-SampleInterval, -MaxSamples, -Continuous, as Get-Counter has them): the node, or every
/// node -Node selects (chosen once), is read for a baseline and then once per sample on one clock
/// (<see cref="SampleClock"/>), every node in parallel through the fan-out. Each node keeps its own
/// sampler state between samples. A sample is written once every node has answered, node by node in
/// name order, so the output of a run reads as one table per node and sample. A node that fails is
/// one error until it answers again; a sample the nodes were too slow for is skipped with a warning.
/// Ctrl+C ends the wait at once.
/// </summary>
public abstract partial class NodeCmdletBase
{
    private readonly List<string> _gatheredNodes = new();
    private readonly List<string> _gatheredInterfaces = new();

    /// <summary>
    /// For a cmdlet that reads every node on one clock (sampling, a window, one exposition): what the
    /// pipeline binds record by record (Get-CalicoNode | ...) is gathered in ProcessRecord and read once,
    /// all together, in EndProcessing (<see cref="UseGathered"/>).
    /// </summary>
    private protected void Gather(string[]? interfaces)
    {
        _gatheredNodes.AddRange(Node ?? Array.Empty<string>());
        _gatheredInterfaces.AddRange(interfaces ?? Array.Empty<string>());
    }

    /// <summary>Sets -Node to every node gathered (none: this machine), and returns every interface gathered (none: null).</summary>
    private protected string[]? UseGathered()
    {
        if (_gatheredNodes.Count > 0)
        {
            Node = _gatheredNodes.Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        }

        return _gatheredInterfaces.Count > 0 ? _gatheredInterfaces.Distinct(StringComparer.Ordinal).ToArray() : null;
    }

    /// <summary>
    /// -Bundle: the one window the bundle recorded per node (Export-CalicoBpfDiagnostic -Window): the
    /// node's answers at the window's start, then the capture's, sampled as live at the window's two
    /// times. A node of the bundle without a window is one error saying why.
    /// </summary>
    private void ReplayWindow<TState, T>(Func<TimeProvider, TState> newState, Func<INodeDataplane, TState, SampleTick, IEnumerable<T>> sample)
        where TState : class
    {
        IClusterConnection cluster = Cluster;
        List<CalicoNode> targets = SelectNodes(NodePatterns, needsCalicoNode: true);
        var fanOut = new NodeFanOut(this, ThrottleLimit, CancelToken, (node, token) => OpenNode(cluster, node, token), UseWorkerReporter, ErrorRecords.FromNode);
        fanOut.Read(targets, end =>
        {
            (BundleNode start, BundleWindowEntry window) = WindowStartOf(end);
            using (start)
            {
                // The samplers' clock is the window's: its start, then its end (the rates divide by the window).
                var time = new WindowTime(window.Start);
                TState state = newState(time);
                foreach (T _ in sample(start, state, new SampleTick(0, window.Start)))
                {
                }

                time.Now = window.End;
                return sample(end, state, new SampleTick(1, window.End)).ToList();
            }
        });
    }

    /// <summary>A node of -Bundle as it answered at the start of its window (its dispose is the node's), with the window's times; a node without one is an error saying why.</summary>
    private protected (BundleNode Start, BundleWindowEntry Window) WindowStartOf(INodeDataplane node)
    {
        BundleNodeEntry entry = OpenedBundle.Manifest.Nodes.First(n => n.Node == node.Node);
        return (node as BundleNode)?.WindowStart() is { } start && entry.Window is { } window ? (start, window)
            : throw new BundleException($"{BundlePath} holds no window of {node.Node}'s counters: {(entry.WindowProblem.Length > 0 ? entry.WindowProblem : "it was made before bundles recorded one")}.");
    }

    /// <summary>Runs a sampling loop: <paramref name="sample"/> reads one node at one tick with that node's state (made by <paramref name="newState"/>).</summary>
    /// <param name="maxSamples">How many samples after the baseline; null: until Ctrl+C (-Continuous).</param>
    private protected void SampleEachNode<TState, T>(Func<TimeProvider, TState> newState, Func<INodeDataplane, TState, SampleTick, IEnumerable<T>> sample,
        TimeSpan interval, int? maxSamples)
        where TState : class
    {
        if (BundlePath is not null)
        {
            if (maxSamples != 1)
            {
                ThrowTerminatingError(new ErrorRecord(new PSInvalidOperationException(
                    "-Continuous, -Follow and -MaxSamples above 1 read the nodes again and again; a bundle holds one window of them. Drop -Bundle to sample the live cluster."),
                    "BundleIsOneMoment", ErrorCategory.InvalidOperation, BundlePath));
            }

            ReplayWindow(newState, sample);
            return;
        }

        var clock = new SampleClock(interval);
        if (IsLocal)
        {
            Run(() =>
            {
                INodeDataplane node = OpenLocalNode();
                TState state = newState(TimeProvider.System);
                Consume(sample(node, state, clock.Baseline));
                clock.Start();
                WriteVerbose($"Baseline read; sample 1 is due in {ConntrackText.ShortDuration(interval)}.");
                for (int n = 1; maxSamples is null || n <= maxSamples; n++)
                {
                    if (NextTick(clock, n) is not { } tick)
                    {
                        return;
                    }

                    foreach (T item in sample(node, state, tick))
                    {
                        WriteObject(item);
                    }
                }
            }, PinDirectory);
            return;
        }

        IClusterConnection cluster = Cluster;
        List<CalicoNode> targets = SelectNodes(Node!, needsCalicoNode: true);
        var states = new ConcurrentDictionary<string, TState>(StringComparer.Ordinal);
        var failing = new ConcurrentDictionary<string, bool>(StringComparer.Ordinal);
        var fanOut = new NodeFanOut(this, ThrottleLimit, CancelToken, (node, token) => OpenNode(cluster, node, token), UseWorkerReporter, ErrorRecords.FromNode);
        SampleTick baseline = clock.Baseline;
        var answers = new ConcurrentDictionary<string, List<T>>(StringComparer.Ordinal);
        fanOut.Read(targets, node => Guarded(node, baseline));
        clock.Start();
        WriteVerbose($"Baseline read on {targets.Count} node(s); sample 1 is due in {ConntrackText.ShortDuration(interval)}.");
        for (int n = 1; maxSamples is null || n <= maxSamples; n++)
        {
            if (NextTick(clock, n) is not { } tick)
            {
                return;
            }

            answers.Clear();
            fanOut.Read(targets, node => Guarded(node, tick));
            foreach (KeyValuePair<string, List<T>> answer in answers.OrderBy(a => a.Key, StringComparer.Ordinal))
            {
                foreach (T item in answer.Value)
                {
                    WriteObject(item);
                }
            }
        }

        // A node's failure is one error; while it goes on failing, each sample says so in verbose only.
        // Each node's answer is kept for the sample's write; the fan-out only carries its messages and errors.
        IEnumerable<T> Guarded(INodeDataplane node, SampleTick tick)
        {
            List<T> items;
            try
            {
                items = sample(node, states.GetOrAdd(node.Node, _ => newState(TimeProvider.System)), tick).ToList();
            }
            catch (Exception ex) when (ex is not OperationCanceledException && failing.ContainsKey(node.Node))
            {
                Reporter.Verbose($"Sample {tick.Number}: still failing: {ex.Message}");
                return Array.Empty<T>();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                failing[node.Node] = true;
                throw;
            }

            if (failing.TryRemove(node.Node, out _))
            {
                Reporter.Warning($"answers again from sample {tick.Number} on: that sample counts from its last good reading (or, if it never had one, is its baseline and writes nothing).");
            }

            answers[node.Node] = items;
            return Array.Empty<T>();
        }

        static void Consume(IEnumerable<T> items)
        {
            foreach (T _ in items)
            {
            }
        }
    }

    /// <summary>Waits for sample <paramref name="n"/>; null on Ctrl+C. Warns when samples had to be skipped.</summary>
    private SampleTick? NextTick(SampleClock clock, int n)
    {
        int skipped = clock.Skipped;
        SampleTick? tick = clock.WaitForNext(n, CancelToken);
        if (tick is not null && clock.Skipped > skipped)
        {
            WriteWarning($"Sample {n} is late: reading took longer than -SampleInterval {ConntrackText.ShortDuration(clock.Interval)}, so {clock.Skipped - skipped} sample time(s) were skipped. "
                + "Give a longer -SampleInterval, fewer nodes, or a higher -ThrottleLimit.");
        }

        return tick;
    }
}
