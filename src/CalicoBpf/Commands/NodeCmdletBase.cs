namespace CalicoBpf.Commands;

/// <summary>
/// Dataplane readers that work on the local node or, with -Node, on any node or every node of a
/// cluster through the Kubernetes API. Nodes are read in parallel (-ThrottleLimit); objects are
/// written on the pipeline thread as they arrive, each carrying its Node; a node that fails is one
/// non-terminating error naming the node, and the others complete.
/// </summary>
public abstract partial class NodeCmdletBase : CalicoBpfCmdletBase
{
    /// <summary>
    /// Where the maps are pinned on a node (local or remote): the -PinPath of a cmdlet that reads or
    /// changes Calico's maps (<see cref="MapCmdletBase"/>); null: the default (release inference reads it).
    /// </summary>
    private protected virtual string? PinDirectory => null;

    /// <summary>This machine's dataplane, for local mode: the maps of -PinPath (a PowerShell path, resolved).</summary>
    private protected INodeDataplane OpenLocalNode() => OpenLocalNode(PinDirectory is { } pins ? ResolvePinPath(pins) : null);

    /// <summary>This machine's dataplane with its maps in <paramref name="pinDirectory"/> (a file-system path; null: the default).</summary>
    private protected INodeDataplane OpenLocalNode(string? pinDirectory) => new LocalDataplane(pinDirectory, release: CalicoVersion);

    /// <summary>Node names, wildcards allowed; * is every node running calico-node. Without it: this machine.</summary>
    [Parameter(ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NodeNameCompleter))]
    public string[]? Node { get; set; }

    /// <summary>
    /// A diagnostics bundle (Export-CalicoBpfDiagnostic's zip) to read instead of the live cluster: the
    /// same objects, filters and views, as the nodes were when it was made. -Node picks among its nodes
    /// (default: all of them).
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public virtual string? Bundle { get; set; }

    private protected override string? BundlePath => Bundle;

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
    private protected bool IsLocal => BundlePath is null && (Node is null
        || (Kubeconfig is null && Context is null && Node.All(n => string.Equals(n, LocalDataplane.LocalNodeName(), StringComparison.OrdinalIgnoreCase))));

    /// <summary>The -Node patterns of a read: as given, or in a bundle every node it holds.</summary>
    private protected string[] NodePatterns => Node ?? new[] { "*" };

    /// <summary>
    /// As <see cref="ForEachNode{T}"/>; names given without wildcards that match nothing are reported,
    /// locally and on each node read to the end that had none (a node that failed has its own error).
    /// </summary>
    protected void ReadEach<T>(Func<INodeDataplane, IEnumerable<T>> read, string[]? names, string errorId, Func<string, string> notFound)
    {
        if (IsLocal)
        {
            Run(() => WriteEach(read(OpenLocalNode()), names, errorId, notFound), PinDirectory);
            return;
        }

        if (names is not { Length: > 0 } || names.Any(WildcardPattern.ContainsWildcardCharacters))
        {
            ForEachNode(read);
            return;
        }

        var empty = new System.Collections.Concurrent.ConcurrentDictionary<string, bool>(StringComparer.Ordinal);
        ForEachNode(node => Counted(read(node), node.Node, empty));
        foreach (string node in empty.Where(e => e.Value).Select(e => e.Key).OrderBy(n => n, StringComparer.Ordinal))
        {
            WriteError(new ErrorRecord(new ItemNotFoundException($"{node}: {notFound(string.Join(", ", names))}"), errorId, ErrorCategory.ObjectNotFound, names));
        }
    }

    /// <summary>Passes <paramref name="items"/> on; once they are all read, notes whether there were none.</summary>
    private static IEnumerable<T> Counted<T>(IEnumerable<T> items, string node, System.Collections.Concurrent.ConcurrentDictionary<string, bool> empty)
    {
        bool any = false;
        foreach (T item in items)
        {
            any = true;
            yield return item;
        }

        empty[node] = !any;
    }

    /// <summary>
    /// For changes: runs <paramref name="change"/> on the local node, or on each node -Node selects in
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

        ForEachNodeInTurn(Node!, change);
    }

    /// <summary>As <see cref="ForEachNodeInTurn(Action{INodeDataplane})"/>, on the cluster nodes <paramref name="nodes"/> names (by <see cref="NodeSelection"/>'s rule).</summary>
    /// <param name="pinDirectory">Where the maps are pinned on those nodes; null: -PinPath.</param>
    private protected void ForEachNodeInTurn(IEnumerable<string> nodes, Action<INodeDataplane> change, string? pinDirectory = null)
    {
        IClusterConnection cluster = Cluster;
        foreach (CalicoNode node in SelectNodes(nodes.ToArray(), needsCalicoNode: true))
        {
            CancelToken.ThrowIfCancellationRequested();
            try
            {
                using CommandDataplane dataplane = RemoteNode(cluster, node, pinDirectory: pinDirectory);
                change(dataplane);
            }
            catch (Exception ex) when (ex is not PipelineStoppedException and not OperationCanceledException)
            {
                WriteError(ErrorRecords.FromNode(node, ex));
            }
        }
    }

    /// <summary>A node of the cluster (or of -Bundle) as a dataplane, opened outside the fan-out (the caller disposes it): for a cmdlet that follows a flow onto another node.</summary>
    private protected INodeDataplane OpenRemoteNode(CalicoNode node) => OpenNode(Cluster, node, CancelToken);

    /// <summary>A node to read: of -Bundle as it was captured, else of the cluster through its tools (disposable both).</summary>
    private protected INodeDataplane OpenNode(IClusterConnection cluster, CalicoNode node, CancellationToken token) =>
        BundlePath is not null ? OpenedBundle.OpenNode(node.Node, CalicoVersion is { } given ? NodeRelease.Given(given) : null) : RemoteNode(cluster, node, token);

    /// <summary>A node of the cluster as a dataplane (its tools over pods/exec), stopped by <paramref name="token"/> (default: the cmdlet's).</summary>
    private CommandDataplane RemoteNode(IClusterConnection cluster, CalicoNode node, CancellationToken? token = null, string? pinDirectory = null) =>
        new CommandDataplane(cluster.ExecRunner(node), pinDirectory ?? PinDirectory, token ?? CancelToken, ReleaseOf(node));

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

    /// <summary>Runs <paramref name="read"/> on the local node, or on each selected node of the cluster, in parallel (<see cref="NodeFanOut"/>).</summary>
    /// <param name="approve">For a change: asked on the pipeline thread for each node (by name) before any is read (ShouldProcess); a node it refuses is not read.</param>
    protected void ForEachNode<T>(Func<INodeDataplane, IEnumerable<T>> read, Func<string, bool>? approve = null)
    {
        if (IsLocal)
        {
            if (approve is not null && !approve(LocalDataplane.LocalNodeName()))
            {
                return;
            }

            Run(() =>
            {
                foreach (T item in read(OpenLocalNode()))
                {
                    WriteObject(item);
                    StreamingMemory.Written();
                }
            }, PinDirectory);
            return;
        }

        IClusterConnection cluster = Cluster;
        List<CalicoNode> targets = SelectNodes(NodePatterns, needsCalicoNode: true);
        if (approve is not null)
        {
            targets = targets.Where(n => approve(n.Node)).ToList();
        }

        new NodeFanOut(this, ThrottleLimit, CancelToken, (node, token) => OpenNode(cluster, node, token), UseWorkerReporter, ErrorRecords.FromNode)
            .Read(targets, read);
    }
}
