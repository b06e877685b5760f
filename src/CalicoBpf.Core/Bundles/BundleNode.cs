using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// A node as a bundle captured it: every question <see cref="RecordingNode"/> was asked gets the
/// answer it got then (the same bytes, the same failures), so the same readers and decoders give the
/// same objects offline as live. A question the export did not ask is a <see cref="BundleException"/>
/// that says so, never a guess; nothing can be changed.
/// </summary>
public sealed class BundleNode : INodeDataplane, IDisposable
{
    private readonly BundleArchive _archive;
    private readonly NodeFacts _facts;
    private readonly NodeRelease? _release;

    /// <param name="archive">The bundle (its owner, the <see cref="BundleCluster"/>, disposes it; every node's thread reads it).</param>
    /// <param name="facts">The node's facts.</param>
    /// <param name="release">-CalicoVersion, which decodes as that release would; null: as the node's was.</param>
    public BundleNode(BundleArchive archive, NodeFacts facts, NodeRelease? release)
    {
        _archive = archive;
        _facts = facts;
        _release = release;
    }

    /// <summary>
    /// The node as it answered at the start of the bundle's window (its counters, rule counters and
    /// clock then); null where no window was recorded.
    /// </summary>
    public BundleNode? WindowStart() => _facts.WindowStart is { } start ? new BundleNode(_archive, start, _release) : null;

    public string Node => _facts.Node;

    public string PinDirectory => _facts.PinDirectory;

    public NodeRelease? GivenRelease => _release ?? _facts.GivenRelease;

    public IReadOnlyList<string> ListPins() => Need(_facts.Pins, "the pin directory's listing").Replay()!;

    public IMapReader OpenMap(string pinName)
    {
        if (!_facts.Maps.TryGetValue(pinName, out MapFact? fact))
        {
            if (_facts.Pins?.Value is { } pins && !pins.Contains(pinName))
            {
                throw new BpfObjectNotFoundException($"{pinName} is not pinned on {Node} (as the bundle captured it).", Errno.ENOENT, pinName);
            }

            throw Missing($"the map {pinName}");
        }

        if (fact.OpenFailure is { } failed)
        {
            throw failed.ToException();
        }

        return new Map(this, pinName, fact);
    }

    public IMapReader OpenMapToDump(string pinName) => OpenMap(pinName);

    public void ExpectDump(string baseName)
    {
    }

    public void PrepareToOpen(IReadOnlyList<string> pinNames)
    {
    }

    public IMapWriter OpenMapForWrite(string pinName) => throw ReadOnly();

    public IReadOnlyList<long?> CountEntries(IReadOnlyList<IMapReader> maps, CancellationToken cancellationToken) =>
        maps.Select(m => m.CountEntries(cancellationToken)).ToList();

    public ClockSample SampleClock() => _facts.Clock ?? throw Missing("the node's clock");

    public IReadOnlyDictionary<int, NetworkLink> ListLinks() => Need(_facts.Links, "the network interfaces").Replay()!.ToDictionary(l => l.IfIndex);

    public IReadOnlyList<QdiscStatistic> ListQdiscs() => Need(_facts.Qdiscs, "the qdiscs").Replay()!;

    public AttachmentListing ListAttachments() => Need(_facts.Attachments, "the TC attachments").Replay()!;

    /// <summary>The programs' runs over the bundle's window, as measured when it was made (the window asked for is the bundle's).</summary>
    public ProgramRunWindow MeasurePrograms(IReadOnlyCollection<uint> programIds, TimeSpan window, CancellationToken cancellationToken)
    {
        ProgramRunWindow runs = (_facts.ProgramRuns ?? throw NotMeasured()).Replay()!;
        var wanted = programIds.ToHashSet();
        return runs with
        {
            Before = runs.Before.Where(r => wanted.Contains(r.Key)).ToDictionary(r => r.Key, r => r.Value),
            After = runs.After.Where(r => wanted.Contains(r.Key)).ToDictionary(r => r.Key, r => r.Value),
        };
    }

    /// <summary>
    /// Fails unless the programs were measured here (a window's start of a bundle made with
    /// -MeasurePrograms, whose attachments were then listed), so that a bundle made without says so
    /// rather than that its attachments were not asked.
    /// </summary>
    public void RequireProgramMeasurement()
    {
        if (_facts.ProgramRuns is null && _facts.Attachments is null)
        {
            throw NotMeasured();
        }
    }

    private BundleException NotMeasured() => new(
        $"The bundle holds no measurement of {Node}'s programs: it was made without -MeasurePrograms (Export-CalicoBpfDiagnostic -MeasurePrograms measures them over its window). Run Get-BpfProgramStatistic on the live cluster.");

    public IReadOnlyList<string>? ListDirectory(string path) =>
        NotInListedDirectory(path) ? null : Lookup(_facts.Directories, path, "the directory " + path);

    public string? ReadTextFile(string path) =>
        NotInListedDirectory(path) ? null : Lookup(_facts.Files, path, "the file " + path);

    public string? ReadEnvironment(string name) => Lookup(_facts.Environment, name, "the environment variable " + name);

    public IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken)
    {
        TraceFact fact = TraceAnswer(tracingDirectory).Replay()!;
        return StoredTrace(() => _archive.OpenGzip(BundleFormat.Trace(_facts)), fact, cancellationToken);
    }

    public long? TraceClockOffset(string? tracingDirectory, CancellationToken cancellationToken) => TraceAnswer(tracingDirectory).Replay()!.ClockOffsetNanoseconds;

    private Answer<TraceFact> TraceAnswer(string? tracingDirectory) =>
        Lookup0(_facts.Trace, tracingDirectory ?? string.Empty, "the trace buffer" + (tracingDirectory is null ? string.Empty : " of " + tracingDirectory));

    public CgroupProgramListing ListCgroupPrograms(string cgroupPath, string linkDirectory) =>
        Lookup(_facts.Cgroups, cgroupPath + "|" + linkDirectory, $"the cgroup programs of {cgroupPath}")!;

    public void RemoveConnectTimeProgramArray(string path) => throw ReadOnly();

    public void RemoveConnectTimeLink(string path) => throw ReadOnly();

    /// <summary>Nothing to release: the bundle's handle is its cluster's.</summary>
    public void Dispose()
    {
    }

    /// <summary>The trace lines a bundle kept, in order (none when it kept none).</summary>
    internal static IEnumerable<string> StoredTrace(Func<Stream> open, TraceFact fact, CancellationToken cancellationToken)
    {
        if (fact.Omitted is { } why)
        {
            throw new BundleException($"The trace buffer's lines were left out of the bundle: {why} Make the bundle again with a larger -MaxSize.");
        }

        if (fact.Kept == 0)
        {
            yield break;
        }

        using var reader = new StreamReader(open(), Encoding.UTF8);
        while (reader.ReadLine() is { } line)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return line;
        }
    }

    /// <summary>
    /// A path not asked for whose directory was listed without it (or was not there): it did not exist
    /// when the bundle was made, which is the answer live gave then.
    /// </summary>
    private bool NotInListedDirectory(string path)
    {
        if (_facts.Files.ContainsKey(path) || _facts.Directories.ContainsKey(path))
        {
            return false;
        }

        int slash = path.TrimEnd('/').LastIndexOf('/');
        if (slash <= 0 || !_facts.Directories.TryGetValue(path[..slash], out Answer<List<string>>? listing) || listing.Failure is not null)
        {
            return false;
        }

        return listing.Value is null || !listing.Value.Contains(path[(slash + 1)..].TrimEnd('/'), StringComparer.Ordinal);
    }

    private T? Lookup<T>(Dictionary<string, Answer<T>> store, string key, string what)
        where T : class => Lookup0(store, key, what).Replay();

    private Answer<T> Lookup0<T>(Dictionary<string, Answer<T>> store, string key, string what)
        where T : class => store.TryGetValue(key, out Answer<T>? a) ? a : throw Missing(what);

    private Answer<T> Need<T>(Answer<T>? answer, string what)
        where T : class => answer ?? throw Missing(what);

    private BundleException Missing(string what) =>
        new($"The bundle holds no answer of {Node} about {what}: it was not asked when the bundle was made. Run the command on the live cluster, or make a new bundle with this module (Export-CalicoBpfDiagnostic).");

    private BundleException ReadOnly() => new($"{Node} is read from a bundle ({_archive.Path}); nothing can be changed there. Run the command on the live cluster.");

    /// <summary>One captured map.</summary>
    private sealed class Map : IMapReader
    {
        private readonly BundleNode _node;
        private readonly string _pin;
        private readonly MapFact _fact;

        public Map(BundleNode node, string pin, MapFact fact)
        {
            _node = node;
            _pin = pin;
            _fact = fact;
        }

        public BpfMapDescriptor Descriptor => _fact.Descriptor ?? throw _node.Missing("the map " + _pin);

        public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken) => Stored().ReadEntries(cancellationToken);

        /// <summary>The count as the node gave it: from the entries kept, or, for a map left out by the size bound, the count kept when it was asked.</summary>
        public long? CountEntries(CancellationToken cancellationToken) =>
            !_fact.Countable ? null : _fact.Omitted is not null && _fact.Counted is { } counted ? counted : Stored().CountEntries(cancellationToken);

        public void Dispose()
        {
        }

        private StoredMapReader Stored()
        {
            if (_fact.ReadFailure is { } failed)
            {
                throw failed.ToException();
            }

            if (_fact.Omitted is { } why)
            {
                throw new BundleException($"The entries of {_pin} on {_node.Node} were left out of the bundle: {why} Make the bundle again with a larger -MaxSize.");
            }

            if (_fact.Entries is null)
            {
                throw _node.Missing("the entries of " + _pin);
            }

            return new StoredMapReader(_fact, () => _node._archive.OpenGzip(BundleFormat.MapEntries(_node._facts, _pin)),
                $"The entries of {_pin} on {_node.Node} in {_node._archive.Path}");
        }
    }
}
