using CalicoBpf.Cluster;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// The live cluster, answering readers and keeping each answer (redacted) for the bundle: the same
/// question gets the first answer again. Safe for the node threads of an export; nothing is changed
/// (patches, deletions and creations other than access reviews are refused).
/// </summary>
public sealed class RecordingCluster : IClusterConnection
{
    private readonly IClusterConnection _live;
    private readonly BundleWriter _writer;
    private readonly object _gate = new();

    /// <param name="maxLogLines">The most lines of a calico-node log any reader gets (-LogLines): a check that asks more gets these, offline too.</param>
    public RecordingCluster(IClusterConnection live, BundleWriter writer, int maxLogLines = int.MaxValue)
    {
        _live = live;
        _writer = writer;
        _maxLogLines = maxLogLines;
        Facts = new ClusterFacts { Context = live.Context };
    }

    public ClusterFacts Facts { get; }

    private readonly int _maxLogLines;

    public string Context => _live.Context;

    public IReadOnlyList<CalicoNode> ListNodes(CancellationToken cancellationToken) =>
        Once(() => Facts.Nodes, a => Facts.Nodes = a, () => _live.ListNodes(cancellationToken).ToList())!;

    public WorkloadIndex LoadWorkloads(CancellationToken cancellationToken)
    {
        WorkloadsFact w = Once(() => Facts.Workloads, a => Facts.Workloads = a, () =>
        {
            WorkloadIndex index = _live.LoadWorkloads(cancellationToken);
            return new WorkloadsFact { Pods = index.Pods.ToList(), Services = index.Services.ToList() };
        })!;
        return new WorkloadIndex(w.Pods, w.Services);
    }

    public IReadOnlyCollection<string> ServedGroupVersions(CancellationToken cancellationToken) =>
        Once(() => Facts.GroupVersions, a => Facts.GroupVersions = a, () => _live.ServedGroupVersions(cancellationToken).OrderBy(v => v, StringComparer.Ordinal).ToList())!;

    public JsonObject? GetResource(ResourceRef resource, string name, CancellationToken cancellationToken)
    {
        RefuseSecrets(resource);
        return Keyed(Facts.Resources, ClusterFacts.ResourceKey(resource) + " " + name, () => Redaction.Resource(_live.GetResource(resource, name, cancellationToken)))?.DeepClone() as JsonObject;
    }

    public IReadOnlyList<JsonObject> ListResources(ResourceRef resource, CancellationToken cancellationToken)
    {
        RefuseSecrets(resource);
        List<JsonObject> items = Keyed(Facts.Lists, ClusterFacts.ResourceKey(resource), () => _live.ListResources(resource, cancellationToken).Select(o => Redaction.Resource(o)!).ToList())!;
        return items.Select(o => (JsonObject)o.DeepClone()).ToList();
    }

    public JsonObject PatchResource(ResourceRef resource, string name, string mergePatch, bool dryRun, CancellationToken cancellationToken) => throw ReadOnly();

    public JsonObject CreateResource(ResourceRef resource, JsonObject body, bool dryRun, CancellationToken cancellationToken)
    {
        if (!BundleCluster.IsReview(resource))
        {
            throw ReadOnly();
        }

        return (JsonObject)Keyed(Facts.Reviews, BundleCluster.ReviewKey(resource, body), () => _live.CreateResource(resource, body, dryRun, cancellationToken))!.DeepClone();
    }

    public void DeleteResource(ResourceRef resource, string name, CancellationToken cancellationToken) => throw ReadOnly();

    public string ReadLog(CalicoNode node, int tailLines, CancellationToken cancellationToken)
    {
        Answer<LogFact>? known;
        lock (_gate)
        {
            Facts.Logs.TryGetValue(node.Node, out known);
        }

        int asked = Math.Min(tailLines, _maxLogLines);
        if (known is null || known.Value is { } k && k.Kept >= k.Asked && k.Asked < asked)
        {
            string entry = BundleFormat.Log(node.Node);
            known = Answer<LogFact>.Of(() =>
            {
                string log = _live.ReadLog(node, asked, cancellationToken);
                try
                {
                    return new LogFact { Asked = asked, Kept = WriteLines(entry, log) };
                }
                catch (BundleFullException ex)
                {
                    _writer.Discard(entry);
                    return new LogFact { Asked = asked, Kept = 0, Omitted = ex.Message };
                }
            });
            lock (_gate)
            {
                Facts.Logs[node.Node] = known;
            }
        }

        LogFact fact = known.Replay()!;
        if (fact.Omitted is not null)
        {
            // Not kept, but the readers of the export (the checks) still read the log itself.
            return _live.ReadLog(node, asked, cancellationToken);
        }

        return BundleCluster.Tail(() => _writer.OpenGzip(BundleFormat.Log(node.Node)), fact, tailLines);
    }

    public ICommandRunner ExecRunner(CalicoNode node) => _live.ExecRunner(node);

    private int WriteLines(string entry, string text)
    {
        int n = 0;
        using var w = new StreamWriter(_writer.CreateGzip(entry), new UTF8Encoding(false));
        using var r = new StringReader(text);
        while (r.ReadLine() is { } line)
        {
            w.WriteLine(Redaction.Line(line));
            n++;
        }

        return n;
    }

    private T? Once<T>(Func<Answer<T>?> get, Action<Answer<T>> set, Func<T?> ask)
        where T : class
    {
        Answer<T>? a;
        lock (_gate)
        {
            a = get();
        }

        if (a is null)
        {
            // Asked outside the lock (an API call); two threads asking at once keep the second answer, the same question's.
            a = Answer<T>.Of(ask);
            lock (_gate)
            {
                set(a);
            }
        }

        return a.Replay();
    }

    private T? Keyed<T>(Dictionary<string, Answer<T>> store, string key, Func<T?> ask)
        where T : class => Once(() => store.GetValueOrDefault(key), a => store[key] = a, ask);
    private static void RefuseSecrets(ResourceRef resource)
    {
        if (Redaction.IsSecretResource(resource))
        {
            throw new NotSupportedException($"A bundle never holds {resource}.");
        }
    }

    private static NotSupportedException ReadOnly() => new("A bundle is made by reading the cluster; nothing in it is changed.");
}
