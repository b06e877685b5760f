namespace CalicoBpf.Diagnostics;

/// <summary>The checks, in the guide's order.</summary>
public static class Checks
{
    public static IReadOnlyList<Check> All { get; } = new Check[]
    {
        new AccessCheck(),
        new BpfRequestedCheck(),
        new BpfRunningCheck(),
        new ServiceImplementationCheck(),
        new KubeProxyConflictCheck(),
        new ServiceSyncLoadCheck(),
        new NodePortVxlanCheck(),
        new DsrCloudCheck(),
        new DebugLoggingCheck(),
        new OverlayCheck(),
        new DropsCheck(),
        new CapacityCheck(),
        new ServicesCheck(),
        new StaleEndpointsCheck(),
        new RoutesCheck(),
        new InterfaceStateCheck(),
    };

    /// <summary>Runs the checks; an exception in one becomes its Error (or Skipped) result and the rest go on.</summary>
    public static IEnumerable<CheckResult> Run(CheckContext context, IEnumerable<Check> checks)
    {
        foreach (Check check in checks)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            List<CheckResult> results;
            try
            {
                results = check.Run(context).ToList();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                results = new List<CheckResult> { check.Failure(ex, string.Empty) };
            }

            foreach (CheckResult r in results)
            {
                yield return r;
            }
        }
    }
}
