using System.Collections.Concurrent;

namespace CalicoBpf.Commands;

/// <summary>
/// Reads many nodes at once for a cmdlet: at most ThrottleLimit nodes in parallel, each on a thread
/// of its own, while the pipeline thread writes what they yield (objects, the engine's warnings and
/// verbose messages, one error per failed node, progress) as it arrives. Workers never write to the
/// pipeline themselves. Stopping the pipeline, or a downstream Select-Object -First, stops them all.
/// Objects are handed over one at a time while the queue has room; once it is full (the pipeline is
/// the slower side) a worker gathers them in chunks of <see cref="ChunkSize"/>, so that the pipeline
/// thread wakes a waiting worker once a chunk, not once an object (that was a quarter of a live read
/// of 50 nodes' full tables, half of the same read from a bundle: docs/performance.md). A worker's partial chunk is taken by the pipeline thread itself as soon as
/// the queue runs empty, so a -Follow stream's objects are never held back waiting for more.
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

    /// <summary>Objects a worker gathers into one hand-over while the queue is full.</summary>
    internal const int ChunkSize = 32;

    /// <summary>
    /// Hand-overs the queue holds (an object, a chunk or a message each): with full chunks 2,048
    /// objects, and the workers' partial chunks under 32 more each; the queue of single objects before
    /// chunks held 4,096.
    /// </summary>
    private const int QueueCapacity = 64;

    /// <summary>How long the pipeline thread waits on an empty queue before it looks at the workers' partial chunks again.</summary>
    private const int PendingCheckMilliseconds = 100;

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
        var results = new BlockingCollection<object?>(boundedCapacity: QueueCapacity);
        var pending = new Handovers(results, work.Token);
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
                            Pending mine = pending.Worker();
                            _useReporter(new QueueReporter(mine, node.Node));
                            try
                            {
                                foreach (T item in read(node, work.Token))
                                {
                                    mine.Hand(item);
                                }
                            }
                            finally
                            {
                                // What was read before the end (or a failure) goes before the node's error and its end.
                                if (!work.IsCancellationRequested)
                                {
                                    mine.Flush();
                                }
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
            while (true)
            {
                if (!results.TryTake(out object? o))
                {
                    // Nothing queued: the workers' partial chunks, then a short wait (a chunk begun just as
                    // the queue ran empty is looked at again after it).
                    if (pending.TakeAll(WriteItem))
                    {
                        continue;
                    }

                    if (!results.TryTake(out o, PendingCheckMilliseconds, work.Token))
                    {
                        if (results.IsCompleted)
                        {
                            break;
                        }

                        continue;
                    }
                }

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
                    case Chunk c:
                        foreach (object? item in c.Items)
                        {
                            WriteItem(item);
                        }

                        break;
                    default:
                        WriteItem(o);
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

        void WriteItem(object? o)
        {
            if (o is T item && take is not null)
            {
                take(item);
                return;
            }

            _cmdlet.WriteObject(o);
            StreamingMemory.Written();
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

    /// <summary>Objects of one worker handed over at once.</summary>
    private sealed record Chunk(List<object?> Items);

    /// <summary>
    /// One worker's hand-over: an object goes to the queue at once while the queue has room and nothing
    /// of the worker waits; otherwise it joins the worker's partial chunk, which goes to the queue when
    /// full (the worker waits for room then, once per chunk) or is taken by the pipeline thread when the
    /// queue runs empty. A worker's objects stay in the order it read them: a partial chunk exists only
    /// while nothing of the worker is on its way to the queue.
    /// </summary>
    private sealed class Pending
    {
        private readonly Handovers _all;
        private readonly object _gate = new();
        private List<object?> _items = new(ChunkSize);

        public Pending(Handovers all)
        {
            _all = all;
        }

        public void Hand(object? item)
        {
            List<object?>? full = null;
            lock (_gate)
            {
                if (_items.Count == 0 && _all.Queue.TryAdd(item))
                {
                    return;
                }

                _items.Add(item);
                if (_items.Count >= ChunkSize)
                {
                    full = _items;
                    _items = new List<object?>(ChunkSize);
                    Interlocked.Add(ref _all.Waiting, 1 - ChunkSize);
                }
                else
                {
                    Interlocked.Increment(ref _all.Waiting);
                }
            }

            if (full is not null)
            {
                _all.Queue.Add(new Chunk(full), _all.Token);
            }
        }

        /// <summary>Hands over the partial chunk (before a message of the worker, and at its end).</summary>
        public void Flush()
        {
            if (TakeAll() is { } items)
            {
                _all.Queue.Add(new Chunk(items), _all.Token);
            }
        }

        /// <summary>Sends a message of the worker, after what it read before it.</summary>
        public void Send(object message)
        {
            Flush();
            _all.Queue.Add(message, _all.Token);
        }

        /// <summary>The partial chunk, taken away; null when there is none.</summary>
        public List<object?>? TakeAll()
        {
            lock (_gate)
            {
                if (_items.Count == 0)
                {
                    return null;
                }

                List<object?> items = _items;
                _items = new List<object?>(ChunkSize);
                Interlocked.Add(ref _all.Waiting, -items.Count);
                return items;
            }
        }
    }

    /// <summary>The queue of one read and its workers' partial chunks, with how many objects those hold.</summary>
    private sealed class Handovers
    {
        private readonly ConcurrentQueue<Pending> _workers = new();

        public Handovers(BlockingCollection<object?> queue, CancellationToken token)
        {
            Queue = queue;
            Token = token;
        }

        public BlockingCollection<object?> Queue { get; }

        public CancellationToken Token { get; }

        /// <summary>Objects in partial chunks: while it is 0 (the queue has room), looking costs one read.</summary>
        public int Waiting;

        public Pending Worker()
        {
            var p = new Pending(this);
            _workers.Enqueue(p);
            return p;
        }

        /// <summary>Writes, on the pipeline thread, the objects the workers have gathered and not handed over; false when there were none.</summary>
        public bool TakeAll(Action<object?> write)
        {
            if (Volatile.Read(ref Waiting) == 0)
            {
                return false;
            }

            bool any = false;
            foreach (Pending p in _workers)
            {
                if (p.TakeAll() is { } items)
                {
                    any = true;
                    foreach (object? item in items)
                    {
                        write(item);
                    }
                }
            }

            return any;
        }
    }

    private sealed record EngineMessage(bool IsWarning, string Text);

    /// <summary>Workers may not write to the pipeline: their messages queue up and are written by the pipeline thread.</summary>
    private sealed class QueueReporter : IEngineReporter
    {
        private readonly Pending _worker;
        private readonly string _node;

        public QueueReporter(Pending worker, string node)
        {
            _worker = worker;
            _node = node;
        }

        public void Warning(string message) => _worker.Send(new EngineMessage(true, $"{_node}: {message}"));

        public void Verbose(string message) => _worker.Send(new EngineMessage(false, $"{_node}: {message}"));
    }
}
