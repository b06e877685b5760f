using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// Everything a node's dataplane answered while a bundle was made (nodes/NODE/facts.json.gz): the
/// raw facts of <see cref="INodeDataplane"/>'s roles, keyed by the question, with the failures too,
/// so that offline the same readers ask the same questions and get the same answers. Map entries
/// are in files of their own (<see cref="MapFact.Entries"/>).
/// </summary>
public sealed class NodeFacts
{
    public string Node { get; set; } = string.Empty;

    /// <summary>Where its files are in the bundle; null: nodes/NODE/ (<see cref="BundleFormat.FilesOf"/>).</summary>
    public string? Directory { get; set; }

    /// <summary>The node's answers at the start of the bundle's window (its counters, rule counters, clock), which the capture's own answers end.</summary>
    public NodeFacts? WindowStart { get; set; }

    public string PinDirectory { get; set; } = string.Empty;

    public NodeRelease? GivenRelease { get; set; }

    /// <summary>The node's clocks when its capture began: every age offline is as it was then.</summary>
    public ClockSample? Clock { get; set; }

    public Answer<List<string>>? Pins { get; set; }

    public Dictionary<string, MapFact> Maps { get; set; } = new(StringComparer.Ordinal);

    public Answer<List<NetworkLink>>? Links { get; set; }

    public Answer<List<QdiscStatistic>>? Qdiscs { get; set; }

    public Answer<AttachmentListing>? Attachments { get; set; }

    /// <summary>The attached programs' run statistics over the window (Export-CalicoBpfDiagnostic -MeasurePrograms); null: not measured.</summary>
    public Answer<ProgramRunWindow>? ProgramRuns { get; set; }

    public Dictionary<string, Answer<List<string>>> Directories { get; set; } = new(StringComparer.Ordinal);

    public Dictionary<string, Answer<string>> Files { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Variables of calico-node's environment asked for; values whose names say they are secret are never kept (<see cref="Redaction"/>).</summary>
    public Dictionary<string, Answer<string>> Environment { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Cgroup program listings, keyed "cgroup|link directory".</summary>
    public Dictionary<string, Answer<CgroupProgramListing>> Cgroups { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The trace buffer as it was (its last lines, in <see cref="BundleFormat.Trace"/>), keyed by the tracing directory asked for ("" for the default).</summary>
    public Dictionary<string, Answer<TraceFact>> Trace { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>An answer: a value (null where the node said "none"), or the failure it answered with.</summary>
public sealed class Answer<T>
    where T : class
{
    public T? Value { get; set; }

    public RecordedFailure? Failure { get; set; }

    public static Answer<T> Of(Func<T?> ask)
    {
        try
        {
            return new Answer<T> { Value = ask() };
        }
        catch (Exception ex) when (ex is not OperationCanceledException && Recordable(ex))
        {
            return new Answer<T> { Failure = RecordedFailure.Of(ex) };
        }
    }

    /// <summary>The answer again: the value, or the failure thrown as it was.</summary>
    public T? Replay() => Failure is { } f ? throw f.ToException() : Value;

    /// <summary>Failures of the node itself are kept; defects and cancellation are not answers.</summary>
    internal static bool Recordable(Exception ex) =>
        ex is not BundleFullException && (ex is BpfException or IOException or UnauthorizedAccessException or NodeCommandException or Cluster.ClusterException);
}

/// <summary>A map as the node described it, and where its entries are.</summary>
public sealed class MapFact
{
    public BpfMapDescriptor? Descriptor { get; set; }

    /// <summary>Why the map could not be opened; then nothing else is known.</summary>
    public RecordedFailure? OpenFailure { get; set; }

    /// <summary>Why its entries could not be read.</summary>
    public RecordedFailure? ReadFailure { get; set; }

    public int Cpus { get; set; }

    public bool PerCpu { get; set; }

    public int ValueStride { get; set; }

    /// <summary>How many entries <see cref="BundleFormat.MapEntries"/> holds; null when they were not captured.</summary>
    public long? Entries { get; set; }

    /// <summary>False where the node cannot count the map's entries (its count is then unknown offline too).</summary>
    public bool Countable { get; set; } = true;

    /// <summary>Why the entries are not in the bundle although they were readable (the size bound).</summary>
    public string? Omitted { get; set; }

    /// <summary>The count of entries the node gave when it was asked (Get-BpfMap, capacity): kept for a map whose entries were left out.</summary>
    public long? Counted { get; set; }
}

/// <summary>The trace lines kept of a node's buffer.</summary>
public sealed class TraceFact
{
    /// <summary>Lines the buffer held; only the last <see cref="Kept"/> are in the bundle.</summary>
    public long Lines { get; set; }

    public long Kept { get; set; }

    /// <summary>Why the lines are not in the bundle although they were read (the size bound); offline reading them is an error saying so.</summary>
    public string? Omitted { get; set; }

    /// <summary>The trace clock's lead over the monotonic clock as the lines were read (<see cref="Transport.INodeTrace.TraceClockOffset"/>); null: not known (a bundle made before it was recorded).</summary>
    public long? ClockOffsetNanoseconds { get; set; }
}
