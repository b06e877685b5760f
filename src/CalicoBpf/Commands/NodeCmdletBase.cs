using System.Collections.Concurrent;
using System.Management.Automation;
using CalicoBpf.Cluster;
using CalicoBpf.Transport;

namespace CalicoBpf.Commands;

/// <summary>
/// Dataplane readers that work on the local node or, with -Node, on any node or every node of a
/// cluster through the Kubernetes API. Nodes are read in parallel (-ThrottleLimit); objects are
/// written on the pipeline thread as they arrive, each carrying its Node; a node that fails is one
/// non-terminating error naming the node, and the others complete.
/// </summary>
public abstract class NodeCmdletBase : ClusterCmdletBase
{
    /// <summary>This machine's dataplane, for local mode.</summary>
    protected abstract INodeDataplane OpenLocalNode();

    /// <summary>Where the maps are pinned on a node (local or remote); null for cmdlets that read no maps.</summary>
    protected virtual string? PinDirectory => null;

    /// <summary>Node names, wildcards allowed; * is every node running calico-node. Without it: this machine.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[]? Node { get; set; }

    /// <summary>The name of each node worker's thread, before the node's name.</summary>
    internal const string WorkerThreadPrefix = "cbpf-node ";

    /// <summary>
    /// How many nodes are read at once. Each node's read is mostly waiting for exec round trips, so a
    /// fleet read lasts about nodes / ThrottleLimit round trips: 32 (Invoke-Command's default) reads 500
    /// nodes in 16 of them, where 8 took 63 (docs/performance.md, replayed fleets).
    /// </summary>
    [Parameter]
    [ValidateRange(1, 256)]
    public int ThrottleLimit { get; set; } = 32;

    /// <summary>
    /// Local mode: no -Node, or -Node naming only this machine (objects read here carry its name, so
    /// piping them into another cmdlet stays local) with no -Kubeconfig or -Context.
    /// </summary>
    private protected bool IsLocal => Node is null
        || (Kubeconfig is null && Context is null && Node.All(n => string.Equals(n, LocalDataplane.LocalNodeName(), StringComparison.OrdinalIgnoreCase)));

    /// <summary>As <see cref="ForEachNode{T}"/>; locally, names given without wildcards that match nothing are reported.</summary>
    protected void ReadEach<T>(Func<INodeDataplane, IEnumerable<T>> read, string[]? names, string errorId, Func<string, string> notFound)
    {
        if (IsLocal)
        {
            Run(() => WriteEach(read(OpenLocalNode()), names, errorId, notFound), PinDirectory);
        }
        else
        {
            ForEachNode(read);
        }
    }

    /// <summary>
    /// For changes: runs <paramref name="change"/> on the local node, or on each selected node in
    /// turn, on the pipeline thread, so that it can ask ShouldProcess for the node before any exec.
    /// A node that fails is one error; the others go on.
    /// </summary>
    protected void ForEachNodeInTurn(Action<INodeDataplane> change)
    {
        if (IsLocal)
        {
            Run(() => change(OpenLocalNode()), PinDirectory);
            return;
        }

        (IClusterConnection cluster, List<CalicoNode> targets) = ResolveNodes();

        foreach (CalicoNode node in targets)
        {
            CancelToken.ThrowIfCancellationRequested();
            try
            {
                using CommandDataplane dataplane = RemoteNode(cluster, node);
                change(dataplane);
            }
            catch (Exception ex) when (ex is not PipelineStoppedException and not OperationCanceledException)
            {
                WriteError(NodeError(node, ex));
            }
        }
    }

    /// <summary>The cluster and the nodes -Node selects; a cluster that cannot be reached stops the cmdlet.</summary>
    private (IClusterConnection Cluster, List<CalicoNode> Targets) ResolveNodes() =>
        (Cluster, SelectNodes(Api(() => Cluster.ListNodes(CancelToken))));

    /// <summary>A node of the cluster as a dataplane (its tools over pods/exec).</summary>
    private protected CommandDataplane RemoteNode(IClusterConnection cluster, CalicoNode node) =>
        new CommandDataplane(cluster.ExecRunner(node), PinDirectory, CancelToken, ReleaseOf(node));

    /// <summary>
    /// The Calico release whose meanings decode the node's maps. Remotely the calico-node image says it;
    /// locally the pinned map versions do. Give it when neither can (a digest-only image, a node where
    /// several releases' maps fit), or to decode as another release would.
    /// </summary>
    [Parameter]
    public CalicoRelease? CalicoVersion { get; set; }

    /// <summary>The release of a remote node: -CalicoVersion, else its image; null: its pins tell.</summary>
    private protected NodeRelease? ReleaseOf(CalicoNode node) =>
        CalicoVersion is { } given ? NodeRelease.Given(given) : node.CalicoRelease;

    /// <summary>Runs <paramref name="read"/> on the local node, or on each selected node of the cluster.</summary>
    protected void ForEachNode<T>(Func<INodeDataplane, IEnumerable<T>> read)
    {
        if (IsLocal)
        {
            Run(() =>
            {
                foreach (T item in read(OpenLocalNode()))
                {
                    WriteObject(item);
                }
            }, PinDirectory);
            return;
        }

        (IClusterConnection cluster, List<CalicoNode> targets) = ResolveNodes();

        if (targets.Count == 0)
        {
            return;
        }

        // The workers stop when the pipeline stops, and also when a downstream command (Select-Object
        // -First) ends it early: then nothing is left blocked on the queue or running on a node.
        using var work = CancellationTokenSource.CreateLinkedTokenSource(CancelToken);
        var results = new BlockingCollection<object?>(boundedCapacity: 4096);
        int done = 0;
        using var throttle = new SemaphoreSlim(ThrottleLimit);
        Task producer = Task.Run(async () =>
        {
            try
            {
                await Task.WhenAll(targets.Select(async node =>
                {
                    await throttle.WaitAsync(work.Token);
                    try
                    {
                        // A thread of its own per node being read: the read blocks on exec round trips, and
                        // blocking pool threads would starve the pool (it adds about one thread a second),
                        // serialising a fleet behind two cores' worth of threads.
                        await Task.Factory.StartNew(() =>
                        {
                            // Named (cbpf-node ..., as /proc/PID/task/*/comm shows it), so a test can see none is left.
                            Thread.CurrentThread.Name = WorkerThreadPrefix + node.Node;
                            UseWorkerReporter(new QueueReporter(results, node.Node, work.Token));
                            using var dataplane = new CommandDataplane(cluster.ExecRunner(node), PinDirectory, work.Token, ReleaseOf(node));
                            foreach (T item in read(dataplane))
                            {
                                results.Add(item, work.Token);
                            }
                        }, work.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !work.Token.IsCancellationRequested)
                    {
                        results.TryAdd(new NodeFailure(node, ex), Timeout.Infinite, work.Token);
                    }
                    finally
                    {
                        throttle.Release();
                        Interlocked.Increment(ref done);
                        if (!work.IsCancellationRequested)
                        {
                            results.TryAdd(null, Timeout.Infinite, work.Token);
                        }
                    }
                }));
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                results.CompleteAdding();
            }
        });

        var progress = new ProgressRecord(1, $"Reading {targets.Count} node(s)", "Starting");
        try
        {
            foreach (object? o in results.GetConsumingEnumerable(work.Token))
            {
                switch (o)
                {
                    case null:
                        progress.PercentComplete = 100 * Volatile.Read(ref done) / targets.Count;
                        progress.StatusDescription = $"{Volatile.Read(ref done)} of {targets.Count} nodes done";
                        WriteProgress(progress);
                        break;
                    case NodeFailure f:
                        WriteError(NodeError(f.Node, f.Error));
                        break;
                    case EngineMessage m when m.IsWarning:
                        WriteWarning(m.Text);
                        break;
                    case EngineMessage m:
                        WriteVerbose(m.Text);
                        break;
                    default:
                        WriteObject(o);
                        break;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            work.Cancel();
            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }

        try
        {
            producer.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // Cancelled workers: their nodes' exec sessions were closed with them.
        }
    }

    /// <summary>The nodes -Node names: literal names must exist; * and other wildcards pick nodes that run calico-node.</summary>
    private List<CalicoNode> SelectNodes(IReadOnlyList<CalicoNode> all)
    {
        var selected = new List<CalicoNode>();
        foreach (string pattern in Node!)
        {
            if (WildcardPattern.ContainsWildcardCharacters(pattern))
            {
                var w = new WildcardPattern(pattern, WildcardOptions.IgnoreCase);
                selected.AddRange(all.Where(n => n.HasCalicoNode && w.IsMatch(n.Node)));
                continue;
            }

            CalicoNode? node = all.FirstOrDefault(n => string.Equals(n.Node, pattern, StringComparison.OrdinalIgnoreCase));
            if (node is null)
            {
                WriteError(new ErrorRecord(new ItemNotFoundException($"The cluster has no node named {pattern}. Get-CalicoNode lists them."),
                    "NodeNotFound", ErrorCategory.ObjectNotFound, pattern));
            }
            else if (!node.HasCalicoNode)
            {
                WriteError(new ErrorRecord(new ItemNotFoundException($"Node {pattern} runs no calico-node pod: there is no Calico dataplane to read there."),
                    "NoCalicoNodePod", ErrorCategory.ObjectNotFound, pattern));
            }
            else
            {
                selected.Add(node);
            }
        }

        return selected.DistinctBy(n => n.Node).ToList();
    }

    private protected static ErrorRecord NodeError(CalicoNode node, Exception ex)
    {
        if (ex is AggregateException { InnerException: { } inner })
        {
            ex = inner;
        }

        ErrorRecord record = ex switch
        {
            ClusterException c => ClusterError(c, "NodeExecFailed", node.Node),
            NodeCommandException c => new ErrorRecord(c, c.ExitCode == 127 ? "NodeToolMissing" : "NodeCommandFailed",
                c.ExitCode == 127 ? ErrorCategory.NotInstalled : ErrorCategory.InvalidResult, node.Node),
            _ => ToErrorRecord(ex, node.Node) is { } r
                ? new ErrorRecord(r.Exception, r.FullyQualifiedErrorId, r.CategoryInfo.Category, node.Node) // the node is the target
                : new ErrorRecord(ex, "NodeReadFailed", ErrorCategory.ReadError, node.Node),
        };
        record.ErrorDetails = new ErrorDetails(ex.Message.Contains(node.Node, StringComparison.Ordinal) ? ex.Message : $"{node.Node}: {ex.Message}");
        return record;
    }

    private sealed record NodeFailure(CalicoNode Node, Exception Error);

    private sealed record EngineMessage(bool IsWarning, string Text);

    /// <summary>Workers may not write to the pipeline: their messages queue up and are written by the pipeline thread.</summary>
    private sealed class QueueReporter : IEngineReporter
    {
        private readonly BlockingCollection<object?> _queue;
        private readonly string _node;
        private readonly CancellationToken _cancellationToken;

        public QueueReporter(BlockingCollection<object?> queue, string node, CancellationToken cancellationToken)
        {
            _queue = queue;
            _node = node;
            _cancellationToken = cancellationToken;
        }

        public void Warning(string message) => _queue.Add(new EngineMessage(true, $"{_node}: {message}"), _cancellationToken);

        public void Verbose(string message) => _queue.Add(new EngineMessage(false, $"{_node}: {message}"), _cancellationToken);
    }
}
