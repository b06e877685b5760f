using System.Management.Automation;
using CalicoBpf.Cluster;
using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Transport;

namespace CalicoBpf.Commands;

/// <summary>
/// What every CalicoBpf cmdlet shares: cancellation wired to Ctrl+C, the engine's warnings and
/// verbose messages, and one mapping from engine exceptions to error records.
/// </summary>
public abstract class CalicoBpfCmdletBase : PSCmdlet
{
    private readonly CancellationTokenSource _stop = new();
    private Reporter? _reporter;
    private readonly AsyncLocal<IEngineReporter?> _workerReporter = new();

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
        catch (Exception ex) when (ToErrorRecord(ex, target) is { } record)
        {
            ThrowTerminatingError(record);
        }
    }

    /// <summary>The error record for an engine exception: a stable id, a real category, the map or path as target.</summary>
    internal static ErrorRecord? ToErrorRecord(Exception ex, object? target) => ex switch
    {
        BpfEnvironmentException e => new ErrorRecord(e, e.Problem switch
        {
            BpfEnvironmentProblem.NotRoot => "NotRoot",
            BpfEnvironmentProblem.NotLinux => "NotLinux",
            BpfEnvironmentProblem.NoBpfFs => "NoBpfFs",
            BpfEnvironmentProblem.NoCalicoMaps => "NoCalicoMaps",
            BpfEnvironmentProblem.NoTraceFs => "NoTraceFs",
            BpfEnvironmentProblem.NoPolicyDebugInfo => "NoPolicyDebugInfo",
            _ => "UnsupportedPlatform",
        }, e.Problem switch
        {
            BpfEnvironmentProblem.NotRoot => ErrorCategory.PermissionDenied,
            BpfEnvironmentProblem.NoCalicoMaps or BpfEnvironmentProblem.NoPolicyDebugInfo => ErrorCategory.ObjectNotFound,
            BpfEnvironmentProblem.NoBpfFs or BpfEnvironmentProblem.NoTraceFs => ErrorCategory.ResourceUnavailable,
            _ => ErrorCategory.NotImplemented,
        }, e.Target ?? target),
        CalicoMapLayoutException e => new ErrorRecord(e, "UnknownMapLayout", ErrorCategory.InvalidData, e.MapName),
        BpfObjectNotFoundException e => new ErrorRecord(e, "MapNotFound", ErrorCategory.ObjectNotFound, e.Target ?? target),
        BpfPermissionDeniedException e => new ErrorRecord(e, "PermissionDenied", ErrorCategory.PermissionDenied, e.Target ?? target),
        BpfNotSupportedException e => new ErrorRecord(e, "NotSupported", ErrorCategory.NotImplemented, e.Target ?? target),
        BpfException e => new ErrorRecord(e, "BpfCallFailed", ErrorCategory.ReadError, e.Target ?? target),
        UnauthorizedAccessException e => new ErrorRecord(e, "PermissionDenied", ErrorCategory.PermissionDenied, target),
        IOException e => new ErrorRecord(e, "PinDirectoryUnreadable", ErrorCategory.ReadError, target),
        _ => null,
    };

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

    /// <summary>The error record of a refused or failed API call: 401, 403, 404, 414, 429 and timeouts get their own ids and categories.</summary>
    private protected static ErrorRecord ClusterError(ClusterException ex, string id, object? target) => new(ex, ex.TimedOut ? "ClusterTimeout" : ex.StatusCode switch
    {
        401 => "ClusterUnauthorized",
        403 => "ClusterForbidden",
        404 => "ClusterNotFound",
        414 => "ClusterRequestTooLong",
        429 => "ClusterThrottled",
        _ => id,
    }, ex.TimedOut ? ErrorCategory.OperationTimeout : ex.StatusCode switch
    {
        401 => ErrorCategory.AuthenticationError,
        403 => ErrorCategory.PermissionDenied,
        404 => ErrorCategory.ObjectNotFound,
        414 => ErrorCategory.LimitsExceeded,
        429 => ErrorCategory.LimitsExceeded,
        _ => ErrorCategory.ConnectionError,
    }, target);

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
}
