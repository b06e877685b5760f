namespace CalicoBpf.Commands;

/// <summary>
/// What every CalicoBpf cmdlet shares: the cluster of -Kubeconfig and -Context (one connection per
/// run; cmdlets that talk to the Kubernetes API only derive from this base directly), cancellation
/// wired to Ctrl+C, the engine's warnings and
/// verbose messages, engine failures as error records (<see cref="ErrorRecords"/>), and the parsing of
/// arguments that several cmdlets share.
/// </summary>
public abstract class CalicoBpfCmdletBase : PSCmdlet, IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Reporter? _reporter;
    private readonly AsyncLocal<IEngineReporter?> _workerReporter = new();
    private IClusterConnection? _cluster;
    private BundleCluster? _bundle;

    protected CancellationToken CancelToken => _stop.Token;

    /// <summary>A -PinPath as a file-system path (PowerShell paths such as ~ or relative ones resolved).</summary>
    protected string ResolvePinPath(string pinPath) =>
        pinPath == MapCatalog.DefaultPinDirectory ? pinPath : GetUnresolvedProviderPathFromPSPath(pinPath);

    protected override void StopProcessing() => _stop.Cancel();

    /// <summary>
    /// The engine's warnings and verbose messages, written on the pipeline thread. (A separate
    /// object, not an interface on the cmdlet: PowerShell scans cmdlet types before the module's
    /// load context is set up, so they must not name engine types in their hierarchy.)
    /// </summary>
    private protected IEngineReporter Reporter => _workerReporter.Value ?? (_reporter ??= new Reporter(this));

    /// <summary>Routes the engine's messages of the calling worker (a node read in parallel) through <paramref name="reporter"/>.</summary>
    private protected void UseWorkerReporter(IEngineReporter reporter) => _workerReporter.Value = reporter;

    /// <summary>Runs the cmdlet's work; turns engine failures into one clear error record.</summary>
    protected void Run(Action work, object? target)
    {
        try
        {
            work();
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
            // Ctrl+C: PowerShell stops the pipeline itself.
        }
        catch (PipelineStoppedException)
        {
            throw;
        }
        catch (Exception ex) when (ErrorRecords.FromEngine(ex, target) is { } record)
        {
            ThrowTerminatingError(record);
        }
    }

    /// <summary>
    /// Writes each item as it comes. When the user named things without wildcards and nothing
    /// came back, says so with one non-terminating error (wildcards that match nothing stay silent,
    /// as in Get-ChildItem).
    /// </summary>
    protected void WriteEach<T>(IEnumerable<T> items, string[]? names, string errorId, Func<string, string> notFound)
    {
        bool any = false;
        foreach (T item in items)
        {
            any = true;
            WriteObject(item);
            StreamingMemory.Written();
        }

        if (!any && names is { Length: > 0 } && !names.Any(WildcardPattern.ContainsWildcardCharacters))
        {
            string list = string.Join(", ", names);
            WriteError(new ErrorRecord(new ItemNotFoundException(notFound(list)), errorId, ErrorCategory.ObjectNotFound, names));
        }
    }

    /// <summary>
    /// Parses -Address values (addresses or CIDRs) of the family being read. Bad input stops the
    /// cmdlet with InvalidAddress or AddressFamilyMismatch before anything is read.
    /// </summary>
    protected bool TryParseAddresses(string[]? texts, bool ipv6, out List<AddressPrefix>? result)
    {
        result = null;
        if (texts is null)
        {
            return true;
        }

        result = new List<AddressPrefix>();
        foreach (string text in texts)
        {
            AddressPrefix prefix;
            try
            {
                prefix = AddressPrefix.Parse(text);
            }
            catch (FormatException ex)
            {
                ThrowTerminatingError(new ErrorRecord(ex, "InvalidAddress", ErrorCategory.InvalidArgument, text));
                return false;
            }

            if (prefix.IsIPv6 != ipv6)
            {
                string hint = prefix.IsIPv6 ? "add -IPv6 to read the IPv6 maps" : "drop -IPv6 to read the IPv4 maps";
                ThrowTerminatingError(new ErrorRecord(
                    new ArgumentException($"-Address {text} is {(prefix.IsIPv6 ? "IPv6" : "IPv4")} but the {(ipv6 ? "IPv6" : "IPv4")} maps are being read: {hint}."),
                    "AddressFamilyMismatch", ErrorCategory.InvalidArgument, text));
                return false;
            }

            result.Add(prefix);
        }

        return true;
    }

    /// <summary>The cached connection for a kubeconfig (as given, or the default chain) and context.</summary>
    private protected IClusterConnection ConnectCluster(string? kubeconfig, string? context, TimeSpan requestTimeout) =>
        ClusterConnections.Get(new ClusterTarget(kubeconfig is null ? null : GetUnresolvedProviderPathFromPSPath(kubeconfig), context, requestTimeout));

    /// <summary>
    /// The conntrack filter that Get-BpfConntrack and Remove-BpfConntrack share. False when an
    /// address was refused (the cmdlet has stopped with the error).
    /// </summary>
    protected bool TryBuildConntrackQuery(bool ipv6, IpProtocol[]? protocol, string[]? address, int[]? port, ConntrackType[]? type,
        TcpState[]? state, TimeSpan olderThan, out ConntrackQuery query)
    {
        query = new ConntrackQuery();
        if (!TryParseAddresses(address, ipv6, out List<AddressPrefix>? addresses))
        {
            return false;
        }

        query = new ConntrackQuery
        {
            IPv6 = ipv6,
            Protocols = protocol,
            Addresses = addresses,
            Ports = port is null ? null : new HashSet<int>(port),
            Types = type,
            States = state,
            OlderThan = MyInvocation.BoundParameters.ContainsKey("OlderThan") ? olderThan : null,
        };
        return true;
    }

    /// <summary>A wildcard filter over names; null when no pattern was given.</summary>
    protected static Func<string, bool>? WildcardFilter(string[]? patterns)
    {
        if (patterns is not { Length: > 0 })
        {
            return null;
        }

        WildcardPattern[] compiled = patterns.Select(p => new WildcardPattern(p, WildcardOptions.IgnoreCase)).ToArray();
        return name => compiled.Any(w => w.IsMatch(name));
    }

    /// <summary>The kubeconfig file; default $KUBECONFIG, then ~/.kube/config, then the in-cluster account.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Kubeconfig { get; set; }

    /// <summary>The kubeconfig context; default its current context.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Context { get; set; }

    /// <summary>
    /// Seconds one request may take: an API call, the start of a command on a node, or a node's
    /// command sending nothing while it is read. Past it, the request is given up with a
    /// ClusterTimeout error (for the node alone, when one node of many is slow).
    /// </summary>
    [Parameter]
    [ValidateRange(1, 3600)]
    public int TimeoutSec { get; set; } = (int)ClusterTarget.DefaultRequestTimeout.TotalSeconds;

    /// <summary>The cluster of -Kubeconfig and -Context; one that cannot be used stops the cmdlet.</summary>
    private protected IClusterConnection Cluster => BundlePath is not null
        ? OpenedBundle
        : _cluster ??= Api(() => ConnectCluster(Kubeconfig, Context, TimeSpan.FromSeconds(TimeoutSec)), Kubeconfig);

    /// <summary>The -Bundle of a cmdlet that reads offline (Export-CalicoBpfDiagnostic's zip); null: the live cluster or node.</summary>
    private protected virtual string? BundlePath => null;

    /// <summary>The bundle of -Bundle, opened once per run; one that cannot be read stops the cmdlet (BundleUnreadable).</summary>
    private protected BundleCluster OpenedBundle
    {
        get
        {
            return _bundle ??= OpenBundle(BundlePath!);
        }
    }

    /// <summary>Opens a bundle given as a PowerShell path (the caller disposes it); one that cannot be read stops the cmdlet (BundleUnreadable).</summary>
    private protected BundleCluster OpenBundle(string bundlePath)
    {
        string path = GetUnresolvedProviderPathFromPSPath(bundlePath);
        try
        {
            return BundleCluster.Open(path);
        }
        catch (Exception ex) when (ex is BundleException or IOException or UnauthorizedAccessException)
        {
            ThrowTerminatingError(new ErrorRecord(ex, "BundleUnreadable",
                ex is FileNotFoundException ? ErrorCategory.ObjectNotFound : ErrorCategory.InvalidData, path));
            throw; // not reached
        }
    }

    /// <summary>Closes the bundle of -Bundle.</summary>
    public void Dispose()
    {
        _bundle?.Dispose();
        _bundle = null;
        GC.SuppressFinalize(this);
    }

    /// <summary>Runs a step against the cluster; an unreachable or refusing cluster stops the cmdlet with its status.</summary>
    private protected T Api<T>(Func<T> step, object? target = null)
    {
        try
        {
            return step();
        }
        catch (ClusterException ex)
        {
            ThrowTerminatingError(ErrorRecords.FromCluster(ex, "ClusterUnavailable", target));
            throw; // not reached
        }
        catch (BundleException ex)
        {
            ThrowTerminatingError(ErrorRecords.FromEngine(ex, target ?? BundlePath)!);
            throw; // not reached
        }
    }

    /// <summary>
    /// The cluster's nodes that <paramref name="patterns"/> name, by the one rule of <see cref="NodeSelection"/>;
    /// <paramref name="needsCalicoNode"/> for cmdlets that work on a node's Calico dataplane.
    /// In a bundle, the nodes of a dataplane read are those it captured.
    /// </summary>
    private protected List<CalicoNode> SelectNodes(string[] patterns, bool needsCalicoNode) => BundlePath is not null && needsCalicoNode
        ? NodeSelection.Select(OpenedBundle.BundledNodes, patterns, needsCalicoNode: false, WriteError, WriteWarning)
        : NodeSelection.Select(Api(() => Cluster.ListNodes(CancelToken)), patterns, needsCalicoNode, WriteError, WriteWarning);
}
