using System.Buffers;
using CalicoBpf.Cluster;
using CalicoBpf.Diagnostics;
using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Sampling;
using CalicoBpf.Trace;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>What Export-CalicoBpfDiagnostic was asked to keep.</summary>
public sealed record ExportOptions
{
    /// <summary>Bytes the bundle's entries may take as stored.</summary>
    public long MaxSize { get; init; } = 2L << 30;

    public int LogLines { get; init; } = 10_000;

    public int TraceLines { get; init; } = 10_000;

    /// <summary>Run Test-CalicoEbpf's checks and keep their answers and results.</summary>
    public bool Checks { get; init; } = true;

    /// <summary>
    /// How long each node's counters are watched before its capture (<see cref="DiagnosticExport.StartWindow"/>):
    /// Get-BpfDrop -Bundle gives the drops of that window. Zero: no window.
    /// </summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Also measure the attached programs over the window (kernel.bpf_stats_enabled on for it, then back): Get-BpfProgramStatistic -Bundle.</summary>
    public bool MeasurePrograms { get; init; }
}

/// <summary>
/// Makes a bundle: each node's readers run on a <see cref="RecordingNode"/> (the typed objects
/// written as JSON lines as they are read, the raw facts kept), then Test-CalicoEbpf's checks on the
/// same recordings, then the manifest and the zip. Nodes are captured in parallel by the caller
/// (<see cref="CaptureNode"/> is safe on a thread per node); nothing on a node or in the cluster changes.
/// </summary>
public sealed class DiagnosticExport : IDisposable
{
    private readonly BundleWriter _writer;
    private readonly ExportOptions _options;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (RecordingNode Node, BundleNodeEntry Entry)> _nodes = new(StringComparer.Ordinal);
    private readonly BundleManifest _manifest;
    private List<CheckResult>? _checks;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (RecordingNode Node, DropSampler Sampler, DateTime At, System.Diagnostics.Stopwatch Since)> _windows = new(StringComparer.Ordinal);

    /// <summary>What the window reads on a node: Get-BpfDrop's defaults (every interface, Felix's policy debug files, the default tracefs).</summary>
    private static readonly DropQuery WindowQuery = new(null, PolicyDebug.DefaultDirectory, null, null);

    /// <param name="path">The zip to write.</param>
    /// <param name="cluster">The cluster the nodes are read through; null: one machine (a local bundle).</param>
    public DiagnosticExport(string path, IClusterConnection? cluster, ExportOptions options, string moduleVersion)
    {
        _options = options;
        _writer = new BundleWriter(path, options.MaxSize);
        Cluster = cluster is null ? null : new RecordingCluster(cluster, _writer, options.LogLines);
        _manifest = new BundleManifest
        {
            ModuleVersion = moduleVersion, Kind = cluster is null ? "Local" : "Cluster", Context = cluster?.Context ?? string.Empty,
            Started = DateTime.UtcNow, MaxSize = options.MaxSize, LogLines = options.LogLines, TraceLines = options.TraceLines,
        };
    }

    /// <summary>The cluster as the export reads it (its answers kept); null for a local bundle.</summary>
    public RecordingCluster? Cluster { get; }

    /// <summary>
    /// Captures one node: every family's objects, then every map's entries not read yet, then (through a
    /// cluster) its calico-node log. Failures of the node are kept as its answers; the result says what
    /// was read and what was not.
    /// </summary>
    public BundleNodeEntry CaptureNode(string name, CalicoNode? identity, Func<INodeDataplane> openLive, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        var entry = new BundleNodeEntry { Node = name, Started = DateTime.UtcNow, Identity = identity };
        var node = new RecordingNode(name, openLive, _writer, _options.TraceLines);
        _nodes[name] = (node, entry);
        try
        {
            EndWindow(name, node, entry, reporter, cancellationToken);
            node.SampleClock();
            try
            {
                entry.Release = ReleaseInference.Of(node, reporter).ToString();
            }
            catch (Exception ex) when (Answer<string>.Recordable(ex))
            {
                entry.Release = string.Empty;
            }

            foreach (string family in DataplaneFamilies.Names)
            {
                cancellationToken.ThrowIfCancellationRequested();
                reporter.Verbose($"capturing {family}");
                entry.Families.Add(CountFamily(family, () => DataplaneFamilies.Read(node, family, reporter, cancellationToken)));
            }

            node.CaptureAllMaps(reporter, cancellationToken);
            if (Cluster is not null && identity is { HasCalicoNode: true })
            {
                try
                {
                    Cluster.ReadLog(identity, _options.LogLines, cancellationToken);
                }
                catch (Exception ex) when (Answer<string>.Recordable(ex))
                {
                    entry.Families.Add(new BundleFamilyEntry { Family = "log", Problem = ex.Message });
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException && Answer<string>.Recordable(ex))
        {
            entry.Status = "Failed";
            entry.Error = ex.Message;
        }
        finally
        {
            node.ReleaseLive();
            entry.Finished = DateTime.UtcNow;
        }

        entry.Omitted = node.Facts.Maps.Where(m => m.Value.Omitted is not null).Select(m => $"{m.Key}: {m.Value.Omitted}").OrderBy(s => s, StringComparer.Ordinal).ToList();
        if (entry.Status != "Failed" && entry.Omitted.Count > 0)
        {
            entry.Status = "Partial";
        }

        return entry;
    }

    /// <summary>
    /// Begins a node's window (<see cref="ExportOptions.Window"/>): its counters, rule counters and clock
    /// are read now, as Get-BpfDrop reads them at a window's start, into facts of their own
    /// (<see cref="NodeFacts.WindowStart"/>); its capture ends the window. Called for every node before
    /// the captures, so the nodes' windows run at once. A node that answers with a failure (no maps
    /// pinned, ...) keeps it as its answer, so that offline its window fails as it did live.
    /// </summary>
    public void StartWindow(string name, Func<INodeDataplane> openLive, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        if (_options.Window <= TimeSpan.Zero)
        {
            return;
        }

        var start = new RecordingNode(name, openLive, _writer, 0, BundleFormat.WindowStartDirectory(name)) { MayMeasurePrograms = _options.MeasurePrograms };
        var sampler = new DropSampler();
        DateTime at = DateTime.UtcNow;
        try
        {
            _ = sampler.Sample(start, new SampleTick(0, at), WindowQuery, reporter, cancellationToken);
            reporter.Verbose($"the window begins: the counters are read again when the capture starts, {ConntrackText.ShortDuration(_options.Window)} from now or later");
            if (_options.MeasurePrograms)
            {
                // The window itself: every attached program, Calico's or not, as Get-BpfProgramStatistic -All measures them.
                _ = ProgramStatistics.Measure(start, null, calicoOnly: false, _options.Window, reporter, cancellationToken).ToList();
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException && Answer<string>.Recordable(ex))
        {
            // The node's answer (no maps: Felix fell back, ...) is in the facts: offline the window fails as live did.
            reporter.Verbose($"the window begins with a failure, kept as the node's answer: {ex.Message}");
        }
        finally
        {
            start.ReleaseLive();
        }

        _windows[name] = (start, sampler, at, System.Diagnostics.Stopwatch.StartNew());
    }

    /// <summary>Ends a node's window once it has lasted <see cref="ExportOptions.Window"/>: the capture's first reads are its end.</summary>
    private void EndWindow(string name, RecordingNode node, BundleNodeEntry entry, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        if (!_windows.TryRemove(name, out var window))
        {
            entry.WindowProblem = _options.Window <= TimeSpan.Zero ? "the bundle was made with -Window 0" : "no window was begun";
            return;
        }

        TimeSpan left = _options.Window - window.Since.Elapsed;
        if (left > TimeSpan.Zero)
        {
            reporter.Verbose($"waiting {ConntrackText.ShortDuration(left)} for the end of the window");
            cancellationToken.WaitHandle.WaitOne(left);
            cancellationToken.ThrowIfCancellationRequested();
        }

        DateTime end = DateTime.UtcNow;
        node.Facts.WindowStart = window.Node.Facts;
        entry.Window = new BundleWindowEntry { Start = window.At, End = end };
        try
        {
            _ = window.Sampler.Sample(node, new SampleTick(1, end), WindowQuery, reporter, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && Answer<string>.Recordable(ex))
        {
            // Kept as the node's answer, as at the start: offline the window ends with the same failure.
            reporter.Verbose($"the window ends with a failure, kept as the node's answer: {ex.Message}");
        }
    }

    /// <summary>
    /// Writes the typed JSON of every captured node's families, from what was captured (nothing is
    /// asked of the nodes again), <paramref name="parallelism"/> nodes at once. It comes after every
    /// capture, so that where the size bound is reached the typed JSON is what is left out, never the
    /// facts that -Bundle reads.
    /// </summary>
    public void WriteObjects(int parallelism, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        var nodes = _nodes.Values.Where(n => n.Entry.Status != "Failed").OrderBy(n => n.Entry.Node, StringComparer.Ordinal).ToList();
        Parallel.ForEach(nodes, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallelism), CancellationToken = cancellationToken }, n =>
        {
            foreach (BundleFamilyEntry family in n.Entry.Families.Where(f => f.Problem.Length == 0 && DataplaneFamilies.Names.Contains(f.Family)))
            {
                WriteFamily(n.Node, family, () => DataplaneFamilies.Read(n.Node, family.Family, NullReporter.Instance, cancellationToken));
            }

            n.Node.ReleaseLive();
        });
    }

    /// <summary>
    /// The cluster's own facts every reader may ask offline: the nodes, the pods and services (for
    /// -Resolve, -Pod, -Service), the API groups, the FelixConfigurations and, per captured node, what
    /// Felix uses there (Get-FelixBpfConfig -Effective). A failure is kept as the answer.
    /// </summary>
    public void CaptureCluster(IEnumerable<CalicoNode> nodes, CancellationToken cancellationToken)
    {
        if (Cluster is null)
        {
            return;
        }

        void Ask(string what, Action ask)
        {
            try
            {
                ask();
            }
            catch (Exception ex) when (ex is not OperationCanceledException && (Answer<string>.Recordable(ex) || ex is FelixValidationException))
            {
                _manifest.Problems.Add($"{what}: {ex.Message}");
            }
        }

        Ask("the nodes", () => Cluster.ListNodes(cancellationToken));
        Ask("the pods and services", () => Cluster.LoadWorkloads(cancellationToken));
        Ask("the Services", () => Cluster.ListResources(ResourceRef.Services, cancellationToken));
        Ask("the EndpointSlices", () => Cluster.ListResources(ResourceRef.EndpointSlices, cancellationToken));
        Ask("the API groups", () => Cluster.ServedGroupVersions(cancellationToken));
        var felix = new FelixConfigClient(Cluster, cancellationToken);
        Ask("the FelixConfigurations", () => felix.List());
        Ask("the IPAM block affinities", () => Cluster.ListResources(felix.Calico("blockaffinities"), cancellationToken));
        foreach (CalicoNode node in nodes)
        {
            Ask("the Felix configuration of " + node.Node, () =>
            {
                _ = felix.SelectorScoped(node).Problems;
                _ = felix.Effective(node).ToList();
            });
        }
    }

    /// <summary>A node whose capture could not start (its exec refused, the node gone): in the manifest, with why.</summary>
    public BundleNodeEntry NodeFailed(string name, CalicoNode? identity, Exception error)
    {
        if (_nodes.TryGetValue(name, out var captured))
        {
            // Its capture began and then failed in a way the node did not answer with: the facts it has are kept, and the manifest says it failed.
            captured.Entry.Status = "Failed";
            captured.Entry.Error = error.Message;
            return captured.Entry;
        }

        var entry = new BundleNodeEntry { Node = name, Identity = identity, Status = "Failed", Error = error.Message, Started = DateTime.UtcNow, Finished = DateTime.UtcNow };
        _nodes.TryAdd(name, (new RecordingNode(name, () => throw error, _writer, 0), entry));
        return entry;
    }

    /// <summary>Runs Test-CalicoEbpf's checks on what was captured (asking the nodes and the cluster again only what they were not asked yet).</summary>
    public IReadOnlyList<CheckResult> RunChecks(IReadOnlyList<Check> checks, CancellationToken cancellationToken)
    {
        CheckContext context;
        if (Cluster is null)
        {
            RecordingNode local = _nodes.Values.Single().Node;
            context = new CheckContext(null, null, local, cancellationToken);
            checks = checks.Where(c => c.Local).ToList();
        }
        else
        {
            context = new CheckContext(Cluster, n => _nodes.TryGetValue(n.Node, out var r) ? r.Node : throw new CheckUnavailableException(n.Node + " was not captured"), null, cancellationToken)
            {
                NodeFilter = n => _nodes.ContainsKey(n.Node),
            };
        }

        try
        {
            _checks = Diagnostics.Checks.Run(context, checks).ToList();
        }
        finally
        {
            foreach ((RecordingNode n, _) in _nodes.Values)
            {
                n.ReleaseLive();
            }
        }

        return _checks;
    }

    /// <summary>
    /// Writes each node's facts and the cluster's: what -Bundle reads. They come before the typed JSON
    /// (<see cref="WriteObjects"/>), so the size bound takes the JSON first.
    /// </summary>
    public void WriteFacts()
    {
        foreach ((RecordingNode node, BundleNodeEntry entry) in _nodes.Values.OrderBy(n => n.Node.Node, StringComparer.Ordinal))
        {
            try
            {
                _writer.WriteJson(BundleFormat.NodeFacts(node.Node), node.Facts);
            }
            catch (BundleFullException ex)
            {
                // The facts are what make a node readable offline: without them it is a failed node, and its other entries go too.
                _writer.DiscardUnder(BundleFormat.NodeDirectory(node.Node));
                entry.Status = "Failed";
                entry.Error = ex.Message;
            }
        }

        if (Cluster is not null)
        {
            try
            {
                _writer.WriteJson(BundleFormat.ClusterFacts, Cluster.Facts);
            }
            catch (BundleFullException ex)
            {
                _writer.Discard(BundleFormat.ClusterFacts);
                _manifest.Problems.Add("The cluster's facts: " + ex.Message);
            }
        }
    }

    /// <summary>Writes the manifest and the zip; returns what the bundle holds.</summary>
    public DiagnosticBundle Complete(CancellationToken cancellationToken)
    {
        foreach ((RecordingNode node, BundleNodeEntry entry) in _nodes.Values.OrderBy(n => n.Node.Node, StringComparer.Ordinal))
        {
            // Maps the checks read after the capture may have been left out too.
            entry.Omitted = node.Facts.Maps.Where(m => m.Value.Omitted is not null).Select(m => $"{m.Key}: {m.Value.Omitted}").OrderBy(s => s, StringComparer.Ordinal).ToList();
            if (entry.Status == "Complete" && entry.Omitted.Count > 0)
            {
                entry.Status = "Partial";
            }

            entry.Bytes = _writer.BytesUnder(BundleFormat.NodeDirectory(node.Node));
            _manifest.Nodes.Add(entry);
        }

        _manifest.Finished = DateTime.UtcNow;
        var plain = new Dictionary<string, object>(StringComparer.Ordinal);
        if (_checks is not null)
        {
            plain[BundleFormat.CheckResults] = _checks;
        }

        long size = _writer.Complete(_manifest, plain, cancellationToken);
        return Summary(_writer.Destination, _manifest, size);
    }

    public void Dispose()
    {
        foreach ((RecordingNode n, _) in _nodes.Values)
        {
            n.Dispose();
        }

        _writer.Dispose();
    }

    /// <summary>Reads a family on the recording node (capturing its facts) and counts it; the node's own failure is the family's problem, as it is offline.</summary>
    private static BundleFamilyEntry CountFamily(string family, Func<IEnumerable<object>> read)
    {
        var result = new BundleFamilyEntry { Family = family };
        try
        {
            foreach (object _ in read())
            {
                result.Objects++;
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException && (Answer<string>.Recordable(ex) || ex is BundleException or CalicoMapLayoutException))
        {
            result.Problem = ex.Message;
        }

        return result;
    }

    /// <summary>Bytes of JSON lines written to a family's gzip entry at a time (<see cref="WriteFamily"/>).</summary>
    private const int LineRun = 64 * 1024;

    /// <summary>The family's objects as JSON lines (nodes/NODE/objects/FAMILY.json.gz); over the size bound, none, and the family says so.</summary>
    private void WriteFamily(RecordingNode node, BundleFamilyEntry family, Func<IEnumerable<object>> read)
    {
        string entry = BundleFormat.Objects(node.Node, family.Family);
        Stream? file = null;
        try
        {
            file = _writer.CreateGzip(entry);
            // Lines gather in memory and reach gzip 64 KiB at a time: a writer over the stream itself
            // flushes it with every object (Utf8JsonWriter.Flush flushes its stream), and a gzip flush is
            // a sync point of deflate's, one per object (25.6 million in a 50-node bundle of full tables).
            var lines = new ArrayBufferWriter<byte>(LineRun + 4096);
            using (var json = new Utf8JsonWriter(lines, new JsonWriterOptions { SkipValidation = true }))
            {
                foreach (object o in read())
                {
                    JsonSerializer.Serialize(json, o, o.GetType(), BundleFormat.Json);
                    json.Flush();
                    lines.GetSpan(1)[0] = (byte)'\n';
                    lines.Advance(1);
                    json.Reset();
                    if (lines.WrittenCount >= LineRun)
                    {
                        file.Write(lines.WrittenSpan);
                        lines.ResetWrittenCount();
                    }
                }
            }

            file.Write(lines.WrittenSpan);

            file.Dispose();
            file = null;
            family.Json = true;
        }
        catch (BundleFullException ex)
        {
            family.JsonOmitted = ex.Message;
        }
        catch (Exception ex) when (ex is not OperationCanceledException && (Answer<string>.Recordable(ex) || ex is BundleException or CalicoMapLayoutException))
        {
            family.JsonOmitted = ex.Message;
        }
        finally
        {
            if (file is not null)
            {
                try
                {
                    file.Dispose();
                }
                catch (IOException)
                {
                }
            }
        }

        if (!family.Json)
        {
            _writer.Discard(entry);
        }
    }

    /// <summary>What the cmdlet writes about the bundle: from its manifest.</summary>
    internal static DiagnosticBundle Summary(string path, BundleManifest manifest, long size) => new()
    {
        Path = path, Kind = manifest.Kind, Context = manifest.Context, Nodes = manifest.Nodes.Count,
        Complete = manifest.Nodes.Count(n => n.Status == "Complete"), Partial = manifest.Nodes.Count(n => n.Status == "Partial"),
        Failed = manifest.Nodes.Count(n => n.Status == "Failed"),
        Problems = new ValueList<string>(manifest.Nodes.Where(n => n.Status != "Complete")
            .Select(n => $"{n.Node}: {n.Status}: {(n.Error.Length > 0 ? n.Error : string.Join("; ", n.Omitted))}")
            .Concat(manifest.Nodes.SelectMany(n => n.Families.Where(f => f.JsonOmitted is not null && f.Problem.Length == 0)
                .Select(f => $"{n.Node}: the typed JSON of {f.Family} was left out ({f.JsonOmitted}); -Bundle reads its facts")))
            .Concat(manifest.Problems).ToList()),
        Size = size, Started = manifest.Started, Finished = manifest.Finished,
    };
}
