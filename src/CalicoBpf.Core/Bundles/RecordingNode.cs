using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// A live node's dataplane that keeps what it answers: each fact the first time it is asked (then
/// the same answer again, so a capture is one moment: one clock, one copy of each map), each map's
/// entries streamed to the bundle as a reader reads them. The readers of every cmdlet run on it
/// while a bundle is made; <see cref="BundleNode"/> answers the same questions offline from what it
/// kept. Nothing is changed on the node: the writing members refuse.
/// </summary>
public sealed class RecordingNode : INodeDataplane, IDisposable
{
    private readonly Func<INodeDataplane> _openLive;
    private readonly BundleWriter _writer;
    private readonly int _traceLines;
    private INodeDataplane? _live;

    /// <param name="node">The node's name.</param>
    /// <param name="openLive">Opens the node's live dataplane, when a question is first asked that was not answered before.</param>
    /// <param name="writer">Where map entries and trace lines go.</param>
    /// <param name="traceLines">Lines of the trace buffer kept (the last ones).</param>
    /// <param name="directory">Where its files go in the bundle; null: nodes/NODE/.</param>
    public RecordingNode(string node, Func<INodeDataplane> openLive, BundleWriter writer, int traceLines, string? directory = null)
    {
        _openLive = openLive;
        _writer = writer;
        _traceLines = traceLines;
        Facts = new NodeFacts { Node = node, Directory = directory };
    }

    /// <summary>What the node answered so far.</summary>
    public NodeFacts Facts { get; }

    public string Node => Facts.Node;

    private INodeDataplane Live
    {
        get
        {
            if (_live is null)
            {
                _live = _openLive();
                Facts.PinDirectory = _live.PinDirectory;
                Facts.GivenRelease = _live.GivenRelease;
            }

            return _live;
        }
    }

    public string PinDirectory => Live.PinDirectory;

    public NodeRelease? GivenRelease => Live.GivenRelease;

    /// <summary>Closes the live dataplane (its exec sessions); a later question opens it again.</summary>
    public void ReleaseLive()
    {
        (_live as IDisposable)?.Dispose();
        _live = null;
    }

    public void Dispose() => ReleaseLive();

    public IReadOnlyList<string> ListPins() => (Facts.Pins ??= Answer<List<string>>.Of(() => Live.ListPins().ToList())).Replay()!;

    public IMapReader OpenMap(string pinName) => Open(pinName, dump: false);

    public IMapReader OpenMapToDump(string pinName) => Open(pinName, dump: true);

    public void ExpectDump(string baseName)
    {
        if (!Facts.Maps.ContainsKey(baseName))
        {
            Live.ExpectDump(baseName);
        }
    }

    public void PrepareToOpen(IReadOnlyList<string> pinNames)
    {
        List<string> unknown = pinNames.Where(p => !Facts.Maps.ContainsKey(p)).ToList();
        if (unknown.Count > 0)
        {
            Live.PrepareToOpen(unknown);
        }
    }

    public IMapWriter OpenMapForWrite(string pinName) => throw ReadOnly();

    public IReadOnlyList<long?> CountEntries(IReadOnlyList<IMapReader> maps, CancellationToken cancellationToken) =>
        maps.Select(m => m.CountEntries(cancellationToken)).ToList();

    /// <summary>Captures the entries of every Calico map of the node not read yet (the readers read most; this gets the rest).</summary>
    public void CaptureAllMaps(IEngineReporter reporter, CancellationToken cancellationToken)
    {
        IReadOnlyList<CalicoMapName> maps;
        try
        {
            maps = this.ListMaps();
        }
        catch (Exception ex) when (Answer<string>.Recordable(ex))
        {
            return; // the pin listing's own failure is kept, and every reader offline meets it as live
        }

        PrepareToOpen(maps.Where(m => !Facts.Maps.ContainsKey(m.PinName)).Select(m => m.PinName).ToList());
        foreach (CalicoMapName m in maps)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Facts.Maps.TryGetValue(m.PinName, out MapFact? f) && (f.Entries is not null || f.OpenFailure is not null || f.ReadFailure is not null || f.Omitted is not null))
            {
                continue;
            }

            try
            {
                using IMapReader r = OpenMapToDump(m.PinName);
                r.CountEntries(cancellationToken);
            }
            catch (Exception ex) when (Answer<string>.Recordable(ex))
            {
                reporter.Verbose($"{m.PinName}: {ex.Message}");
            }
        }
    }

    public ClockSample SampleClock() => Facts.Clock ??= Live.SampleClock();

    public IReadOnlyDictionary<int, NetworkLink> ListLinks() =>
        (Facts.Links ??= Answer<List<NetworkLink>>.Of(() => Live.ListLinks().Values.OrderBy(l => l.IfIndex).ToList())).Replay()!.ToDictionary(l => l.IfIndex);

    public IReadOnlyList<QdiscStatistic> ListQdiscs() => (Facts.Qdiscs ??= Answer<List<QdiscStatistic>>.Of(() => Live.ListQdiscs().ToList())).Replay()!;

    public AttachmentListing ListAttachments() => (Facts.Attachments ??= Answer<AttachmentListing>.Of(() => Live.ListAttachments())).Replay()!;

    /// <summary>Whether the export may measure the node's programs (-MeasurePrograms): that turns the kernel's statistics on for the window.</summary>
    public bool MayMeasurePrograms { get; init; }

    public ProgramRunWindow MeasurePrograms(IReadOnlyCollection<uint> programIds, TimeSpan window, CancellationToken cancellationToken) =>
        MayMeasurePrograms
            ? (Facts.ProgramRuns ??= Answer<ProgramRunWindow>.Of(() => Live.MeasurePrograms(programIds, window, cancellationToken))).Replay()!
            : throw new NotSupportedException("A bundle is made without measuring programs unless -MeasurePrograms is given: that turns the kernel's statistics on.");

    public IReadOnlyList<string>? ListDirectory(string path) => Remember(Facts.Directories, path, () => Live.ListDirectory(path)?.ToList());

    public string? ReadTextFile(string path) => Remember(Facts.Files, path, () => Live.ReadTextFile(path));

    public string? ReadEnvironment(string name) => Remember(Facts.Environment, name, () => Redaction.EnvironmentValue(name, Live.ReadEnvironment(name)));

    public IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken)
    {
        Answer<TraceFact> answer = TraceAnswer(tracingDirectory, cancellationToken);
        // Not kept (the size bound): the export's readers still read the buffer itself.
        return answer.Value!.Omitted is not null
            ? Live.ReadTraceLines(false, tracingDirectory, cancellationToken)
            : BundleNode.StoredTrace(() => _writer.OpenGzip(BundleFormat.Trace(Facts)), answer.Value!, cancellationToken);
    }

    /// <summary>The lead as it was when the trace was captured (with it, so that offline a window picks the lines live did).</summary>
    public long? TraceClockOffset(string? tracingDirectory, CancellationToken cancellationToken) =>
        TraceAnswer(tracingDirectory, cancellationToken).Value!.ClockOffsetNanoseconds;

    /// <summary>The trace buffer as captured (once per tracing directory), its failure thrown again.</summary>
    private Answer<TraceFact> TraceAnswer(string? tracingDirectory, CancellationToken cancellationToken)
    {
        string key = tracingDirectory ?? string.Empty;
        if (!Facts.Trace.TryGetValue(key, out Answer<TraceFact>? answer))
        {
            Facts.Trace[key] = answer = Answer<TraceFact>.Of(() => CaptureTrace(tracingDirectory, cancellationToken));
        }

        answer.Replay();
        return answer;
    }

    public CgroupProgramListing ListCgroupPrograms(string cgroupPath, string linkDirectory) =>
        Remember(Facts.Cgroups, cgroupPath + "|" + linkDirectory, () => Live.ListCgroupPrograms(cgroupPath, linkDirectory))!;

    public void RemoveConnectTimeProgramArray(string path) => throw ReadOnly();

    public void RemoveConnectTimeLink(string path) => throw ReadOnly();

    private static T? Remember<T>(Dictionary<string, Answer<T>> store, string key, Func<T?> ask)
        where T : class
    {
        if (!store.TryGetValue(key, out Answer<T>? answer))
        {
            store[key] = answer = Answer<T>.Of(ask);
        }

        return answer.Replay();
    }

    private IMapReader Open(string pinName, bool dump)
    {
        if (Facts.Maps.TryGetValue(pinName, out MapFact? fact))
        {
            if (fact.OpenFailure is { } failed)
            {
                throw failed.ToException();
            }

            if (fact.Entries is not null)
            {
                return new StoredMapReader(fact, () => _writer.OpenGzip(BundleFormat.MapEntries(Facts, pinName)), $"The captured entries of {pinName} on {Node}");
            }
        }

        IMapReader live;
        try
        {
            live = dump ? Live.OpenMapToDump(pinName) : Live.OpenMap(pinName);
        }
        catch (Exception ex) when (Answer<string>.Recordable(ex))
        {
            Facts.Maps[pinName] = new MapFact { OpenFailure = RecordedFailure.Of(ex) };
            throw;
        }

        fact ??= Facts.Maps[pinName] = new MapFact();
        fact.Descriptor = live.Descriptor;
        fact.Countable = live.Descriptor.Type.IsIterable();
        fact.ValueStride = live.Descriptor.ValueSize;
        fact.Cpus = 1;
        return new Capture(this, pinName, live, fact);
    }

    private TraceFact CaptureTrace(string? tracingDirectory, CancellationToken cancellationToken)
    {
        // The buffer's last lines: a ring of them, then written in order.
        var ring = new Queue<string>(Math.Min(_traceLines, 4096));
        long lines = 0;
        foreach (string line in Live.ReadTraceLines(follow: false, tracingDirectory, cancellationToken))
        {
            lines++;
            if (_traceLines == 0)
            {
                continue;
            }

            if (ring.Count == _traceLines)
            {
                ring.Dequeue();
            }

            ring.Enqueue(Redaction.Line(line));
        }

        long? offset = Live.TraceClockOffset(tracingDirectory, cancellationToken);
        string entry = BundleFormat.Trace(Facts);
        try
        {
            using (var w = new StreamWriter(_writer.CreateGzip(entry), new UTF8Encoding(false)))
            {
                foreach (string line in ring)
                {
                    w.WriteLine(line);
                }
            }

            return new TraceFact { Lines = lines, Kept = ring.Count, ClockOffsetNanoseconds = offset };
        }
        catch (BundleFullException ex)
        {
            _writer.Discard(entry);
            return new TraceFact { Lines = lines, Kept = 0, Omitted = ex.Message, ClockOffsetNanoseconds = offset };
        }
    }

    private NotSupportedException ReadOnly() => new($"A bundle is made by reading {Node}; nothing on it is changed.");

    /// <summary>A live map read that keeps the entries as they stream by; a read stopped early keeps nothing (the next read captures).</summary>
    private sealed class Capture : IMapReader
    {
        private readonly RecordingNode _node;
        private readonly string _pin;
        private readonly IMapReader _live;
        private readonly MapFact _fact;

        public Capture(RecordingNode node, string pin, IMapReader live, MapFact fact)
        {
            _node = node;
            _pin = pin;
            _live = live;
            _fact = fact;
        }

        public BpfMapDescriptor Descriptor => _live.Descriptor;

        public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken)
        {
            if (_fact.Entries is not null)
            {
                return new StoredMapReader(_fact, () => _node._writer.OpenGzip(BundleFormat.MapEntries(_node.Facts, _pin)), $"The captured entries of {_pin} on {_node.Node}")
                    .ReadEntries(cancellationToken);
            }

            return _fact.Omitted is not null ? _live.ReadEntries(cancellationToken) : Capturing(cancellationToken);
        }

        public long? CountEntries(CancellationToken cancellationToken)
        {
            if (!_fact.Countable)
            {
                return _live.CountEntries(cancellationToken);
            }

            if (_fact.Entries is null && _fact.Omitted is null)
            {
                foreach (RawEntryBatch _ in ReadEntries(cancellationToken))
                {
                }
            }

            long? counted = _fact.Entries is { } n ? (Descriptor.Type.IsArray() ? Descriptor.MaxEntries : n) : _live.CountEntries(cancellationToken);
            _fact.Counted ??= counted;
            return counted;
        }

        public void Dispose() => _live.Dispose();

        private IEnumerable<RawEntryBatch> Capturing(CancellationToken cancellationToken)
        {
            string entry = BundleFormat.MapEntries(_node.Facts, _pin);
            Stream? file = _node._writer.CreateGzip(entry);
            long count = 0;
            bool complete = false;
            using IEnumerator<RawEntryBatch> batches = _live.ReadEntries(cancellationToken).GetEnumerator();
            try
            {
                while (true)
                {
                    try
                    {
                        if (!batches.MoveNext())
                        {
                            break;
                        }
                    }
                    catch (Exception ex) when (Answer<string>.Recordable(ex))
                    {
                        _fact.ReadFailure = RecordedFailure.Of(ex);
                        throw;
                    }

                    RawEntryBatch b = batches.Current;
                    if (file is not null)
                    {
                        _fact.Cpus = b.Cpus;
                        _fact.PerCpu = b.PerCpu;
                        _fact.ValueStride = b.ValueStride;
                        try
                        {
                            for (int i = 0; i < b.Count; i++)
                            {
                                file.Write(b.Key(i));
                                file.Write(b.Value(i));
                            }
                        }
                        catch (BundleFullException ex)
                        {
                            Abandon(ref file, entry, ex);
                        }
                    }

                    count += b.Count;
                    yield return b;
                }

                complete = true;
            }
            finally
            {
                if (file is not null)
                {
                    try
                    {
                        file.Dispose();
                    }
                    catch (BundleFullException ex)
                    {
                        complete = false;
                        file = null;
                        _fact.Omitted = ex.Message;
                    }

                    if (complete)
                    {
                        _fact.Entries = count;
                    }
                    else
                    {
                        _node._writer.Discard(entry);
                    }
                }
            }
        }

        private void Abandon(ref Stream? file, string entry, BundleFullException ex)
        {
            try
            {
                file!.Dispose();
            }
            catch (IOException)
            {
            }

            file = null;
            _node._writer.Discard(entry);
            _fact.Omitted = ex.Message;
        }
    }
}
