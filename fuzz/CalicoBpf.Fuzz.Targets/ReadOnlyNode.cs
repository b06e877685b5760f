using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Transport;

namespace CalicoBpf.Fuzz;

/// <summary>
/// What every in-memory, read-only node of the fuzzer and the tests shares: maps come from a
/// subclass (fuzz input, Calico's vectors, captured dumps); there is nothing to write, no policy
/// files, no connect-time programs, and a fixed clock unless the subclass has the node's own.
/// </summary>
public abstract class ReadOnlyNode : INodeDataplane
{
    public abstract string Node { get; }

    public virtual string PinDirectory => MapCatalog.DefaultPinDirectory;

    /// <summary>The maps the subclass holds.</summary>
    public abstract IReadOnlyList<CalicoMapName> ListMaps();

    public IReadOnlyList<string> ListPins() => ListMaps().Select(p => p.PinName).ToList();

    /// <summary>Null: inferred from the pinned map versions, as on a local node, unless the subclass knows better.</summary>
    public virtual NodeRelease? GivenRelease => null;

    public abstract IMapReader OpenMap(string pinName);

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

    public virtual ClockSample SampleClock() => new(5_000_000_000_000, new DateTime(2026, 11, 26, 8, 0, 0, DateTimeKind.Utc));

    public virtual IReadOnlyDictionary<int, NetworkLink> ListLinks() => new Dictionary<int, NetworkLink> { [1] = new(1, "lo"), [2] = new(2, "eth0") };

    public virtual IReadOnlyList<QdiscStatistic> ListQdiscs() => Array.Empty<QdiscStatistic>();

    public virtual AttachmentListing ListAttachments() => new(Array.Empty<ProgramAttachment>());

    public virtual ProgramRunWindow MeasurePrograms(IReadOnlyCollection<uint> programIds, TimeSpan window, CancellationToken cancellationToken) =>
        new(new Dictionary<uint, ProgramRun>(), new Dictionary<uint, ProgramRun>(), window, false);

    public IReadOnlyList<string>? ListDirectory(string path) => null;

    public string? ReadTextFile(string path) => null;

    public virtual IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken) => Array.Empty<string>();

    public virtual long? TraceClockOffset(string? tracingDirectory, CancellationToken cancellationToken) => null;

    public string? ReadEnvironment(string name) => null;

    public CgroupProgramListing ListCgroupPrograms(string cgroupPath, string linkDirectory) =>
        new(cgroupPath, Array.Empty<CgroupAttachment>(), Array.Empty<LinkPin>());

    public void RemoveConnectTimeProgramArray(string path) => throw ReadOnly();

    public void RemoveConnectTimeLink(string path) => throw ReadOnly();

    protected BpfObjectNotFoundException NotPinned(string pinName) => new($"{pinName} is not pinned on {Node}.", Errno.ENOENT, pinName);

    private NotSupportedException ReadOnly() => new($"{Node} is a read-only in-memory node.");
}
