namespace CalicoBpf.Commands;

/// <summary>
/// The one mapping from engine exceptions to error records: a stable id, a real category, and the
/// map, path or node as target. Every cmdlet, the node base and the fan-out use it.
/// </summary>
internal static class ErrorRecords
{
    /// <summary>The error record for an engine exception; null for an exception that is not the engine's (a defect: it propagates).</summary>
    public static ErrorRecord? FromEngine(Exception ex, object? target) => ex switch
    {
        BpfEnvironmentException e => new ErrorRecord(e, e.Problem switch
        {
            BpfEnvironmentProblem.NotRoot => "NotRoot",
            BpfEnvironmentProblem.NotLinux => "NotLinux",
            BpfEnvironmentProblem.NoBpfFs => "NoBpfFs",
            BpfEnvironmentProblem.NoCalicoMaps => "NoCalicoMaps",
            BpfEnvironmentProblem.NoTraceFs => "NoTraceFs",
            BpfEnvironmentProblem.NoPolicyDebugInfo => "NoPolicyDebugInfo",
            BpfEnvironmentProblem.NotADirectory => "PinPathNotDirectory",
            BpfEnvironmentProblem.NotTracingDirectory => "TracingPathNotTraceFs",
            _ => "UnsupportedPlatform",
        }, e.Problem switch
        {
            BpfEnvironmentProblem.NotRoot => ErrorCategory.PermissionDenied,
            BpfEnvironmentProblem.NoCalicoMaps or BpfEnvironmentProblem.NoPolicyDebugInfo => ErrorCategory.ObjectNotFound,
            BpfEnvironmentProblem.NoBpfFs or BpfEnvironmentProblem.NoTraceFs => ErrorCategory.ResourceUnavailable,
            BpfEnvironmentProblem.NotADirectory or BpfEnvironmentProblem.NotTracingDirectory => ErrorCategory.InvalidArgument,
            _ => ErrorCategory.NotImplemented,
        }, e.Target ?? target),
        BundleException e => new ErrorRecord(e, "NotInBundle", ErrorCategory.ObjectNotFound, target),
        CalicoMapLayoutException e => new ErrorRecord(e, "UnknownMapLayout", ErrorCategory.InvalidData, e.MapName),
        BpfObjectNotFoundException e => new ErrorRecord(e, "MapNotFound", ErrorCategory.ObjectNotFound, e.Target ?? target),
        BpfPermissionDeniedException e => new ErrorRecord(e, "PermissionDenied", ErrorCategory.PermissionDenied, e.Target ?? target),
        BpfNotSupportedException e => new ErrorRecord(e, "NotSupported", ErrorCategory.NotImplemented, e.Target ?? target),
        BpfException e => new ErrorRecord(e, "BpfCallFailed", ErrorCategory.ReadError, e.Target ?? target),
        UnauthorizedAccessException e => new ErrorRecord(e, "PermissionDenied", ErrorCategory.PermissionDenied, target),
        IOException e => new ErrorRecord(e, "PinDirectoryUnreadable", ErrorCategory.ReadError, target),
        _ => null,
    };

    /// <summary>The error record of a refused or failed API call: 401, 403, 404, 414, 429 and timeouts get their own ids and categories.</summary>
    public static ErrorRecord FromCluster(ClusterException ex, string id, object? target) => new(ex, ex.TimedOut ? "ClusterTimeout" : ex.StatusCode switch
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

    /// <summary>The error record of a node that failed: the node is the target, and the message names it.</summary>
    public static ErrorRecord FromNode(CalicoNode node, Exception ex)
    {
        if (ex is AggregateException { InnerException: { } inner })
        {
            ex = inner;
        }

        ErrorRecord record = ex switch
        {
            ClusterException c => FromCluster(c, "NodeExecFailed", node.Node),
            NodeCommandException c => new ErrorRecord(c, c.ExitCode == 127 ? "NodeToolMissing" : "NodeCommandFailed",
                c.ExitCode == 127 ? ErrorCategory.NotInstalled : ErrorCategory.InvalidResult, node.Node),
            _ => FromEngine(ex, node.Node) is { } r
                ? new ErrorRecord(r.Exception, r.FullyQualifiedErrorId, r.CategoryInfo.Category, node.Node) // the node is the target
                : new ErrorRecord(ex, "NodeReadFailed", ErrorCategory.ReadError, node.Node),
        };
        record.ErrorDetails = new ErrorDetails(ex.Message.Contains(node.Node, StringComparison.Ordinal) ? ex.Message : $"{node.Node}: {ex.Message}");
        return record;
    }
}
