using System.Collections.Concurrent;

namespace CalicoBpf.Commands;

/// <summary>
/// Reads many nodes at once for a cmdlet: at most ThrottleLimit nodes in parallel, each on a thread
/// of its own, while the pipeline thread writes what they yield (objects, the engine's warnings and
/// verbose messages, one error per failed node, progress) as it arrives. Workers never write to the
/// pipeline themselves. Stopping the pipeline, or a downstream Select-Object -First, stops them all.
/// </summary>
internal sealed class NodeFanOut
{
    /// <summary>The name of each node worker's thread, before the node's name.</summary>
    internal const string WorkerThreadPrefix = "cbpf-node ";

    private readonly Cmdlet _cmdlet;
    private readonly int _throttleLimit;
    private readonly CancellationToken _cancel;
    private readonly Func<CalicoNode, CancellationToken, INodeDataplane> _open;
    private readonly Action<IEngineReporter> _useReporter;
    private readonly Func<CalicoNode, Exception, ErrorRecord> _nodeError;

    /// <param name="cmdlet">Writes the results, on the pipeline thread.</param>
    /// <param name="throttleLimit">How many nodes are read at once.</param>
    /// <param name="cancel">The cmdlet's stop token.</param>
    /// <param name="open">A node as a dataplane, its work stopped by the token.</param>
    /// <param name="useReporter">Routes the engine's messages of the calling worker through the reporter given.</param>
    /// <param name="nodeError">The error record of a node that failed.</param>
    public NodeFanOut(Cmdlet cmdlet, int throttleLimit, CancellationToken cancel, Func<CalicoNode, CancellationToken, INodeDataplane> open,
        Action<IEngineReporter> useReporter, Func<CalicoNode, Exception, ErrorRecord> nodeError)
    {
        _cmdlet = cmdlet;
        _throttleLimit = throttleLimit;
        _cancel = cancel;
        _open = open;
        _useReporter = useReporter;
        _nodeError = nodeError;
    }

    /// <summary>Runs <paramref name="read"/> on each target node and writes its objects as they come.</summary>
    public void Read<T>(IReadOnlyList<CalicoNode> targets, Func<INodeDataplane, IEnumerable<T>> read) =>
        ReadNodes(targets, (node, token) => OpenAndRead(node, token, read), null);

    /// <summary>
    /// Runs <paramref name="read"/> for each target node (it opens what it reads itself); what it yields goes to
    /// <paramref name="take"/> on the pipeline thread (null: written as output).
    /// </summary>
    public void ReadNodes<T>(IReadOnlyList<CalicoNode> targets, Func<CalicoNode, CancellationToken, IEnumerable<T>> read, Action<T>? take)
    {
        if (targets.Count == 0)
        {
            return;
        }

        // The workers stop when the pipeline stops, and also when a downstream command (Select-Object
        // -First) ends it early: then nothing is left blocked on the queue or running on a node.
        using var work = CancellationTokenSource.CreateLinkedTokenSource(_cancel);
        var results = new BlockingCollection<object?>(boundedCapacity: 4096);
        int done = 0;
        using var throttle = new SemaphoreSlim(_throttleLimit);
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
                            _useReporter(new QueueReporter(results, node.Node, work.Token));
                            foreach (T item in read(node, work.Token))
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
                        _cmdlet.WriteProgress(progress);
                        break;
                    case NodeFailure f:
                        _cmdlet.WriteError(_nodeError(f.Node, f.Error));
                        break;
                    case EngineMessage m when m.IsWarning:
                        _cmdlet.WriteWarning(m.Text);
                        break;
                    case EngineMessage m:
                        _cmdlet.WriteVerbose(m.Text);
                        break;
                    case T item when take is not null:
                        take(item);
                        break;
                    default:
                        _cmdlet.WriteObject(o);
                        StreamingMemory.Written();
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
            _cmdlet.WriteProgress(progress);
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

    private IEnumerable<T> OpenAndRead<T>(CalicoNode node, CancellationToken token, Func<INodeDataplane, IEnumerable<T>> read)
    {
        INodeDataplane dataplane = _open(node, token);
        try
        {
            foreach (T item in read(dataplane))
            {
                yield return item;
            }
        }
        finally
        {
            (dataplane as IDisposable)?.Dispose();
        }
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
