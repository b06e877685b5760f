using CalicoBpf.Cluster;

namespace CalicoBpf.Diagnostics;

/// <summary>
/// One check of Calico's eBPF troubleshooting guide. Cluster checks return one result; per-node
/// checks one per node. A check that cannot get what it needs says so (Skipped or Error) and never
/// stops the others.
/// </summary>
public abstract class Check
{
    public const string Guide = "https://docs.tigera.io/calico/latest/operations/ebpf/troubleshoot-ebpf";

    public abstract string Id { get; }

    public abstract string Title { get; }

    public virtual string HelpUri => Guide;

    /// <summary>Runs in Test-CalicoEbpf -Local (on this machine, without a cluster).</summary>
    public virtual bool Local => false;

    public abstract IEnumerable<CheckResult> Run(CheckContext context);

    protected CheckResult Result(CheckStatus status, string message, string node = "", string evidence = "", string remediation = "") => new()
    {
        Check = Id,
        Title = Title,
        Node = node,
        Status = status,
        Message = message,
        Evidence = evidence,
        Remediation = remediation,
        HelpUri = HelpUri,
    };

    /// <summary>The first <paramref name="shown"/> items, joined, and how many more there are ("a, b and 3 more").</summary>
    protected static string FirstFew(IReadOnlyList<string> items, int shown = 5) =>
        string.Join(", ", items.Take(shown)) + (items.Count > shown ? $" and {items.Count - shown} more" : string.Empty);

    /// <summary>Runs per node, each node on its own: a node whose facts cannot be had is one Error (or Skipped), not the end of the check.</summary>
    protected IEnumerable<CheckResult> PerNode(CheckContext context, Func<CalicoNode, CheckResult> check)
    {
        var results = new List<CheckResult>();
        foreach (CalicoNode node in context.Nodes)
        {
            try
            {
                results.Add(check(node));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                results.Add(Failure(ex, node.Node));
            }
        }

        return results;
    }

    /// <summary>A check of node dataplanes: this machine's with -Local, else each node's through exec.</summary>
    protected IEnumerable<CheckResult> OnEachDataplane(CheckContext context, Func<Transport.INodeDataplane, string, CheckResult> check) =>
        context.Local is { } local
            ? OnLocal(local, l => check(l, l.Node))
            : PerNode(context, node =>
            {
                context.Require("exec into calico-node");
                return check(context.Dataplane(node), node.Node);
            });

    /// <summary>Runs on this machine (-Local): a machine without Calico's maps is Skipped, as a node without them is.</summary>
    protected IEnumerable<CheckResult> OnLocal(Transport.INodeDataplane local, Func<Transport.INodeDataplane, CheckResult> check)
    {
        try
        {
            return new[] { check(local) };
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new[] { Failure(ex, local.Node) };
        }
    }

    /// <summary>
    /// What an exception a check met makes of its result: a fact it could not have (no cluster, no
    /// right, no Calico maps where eBPF is not running) is Skipped with the reason; anything else is Error.
    /// </summary>
    public CheckResult Failure(Exception ex, string node) => ex switch
    {
        CheckUnavailableException => Result(CheckStatus.Skipped, $"Not checked: {ex.Message}.", node),
        Interop.BpfEnvironmentException { Problem: Interop.BpfEnvironmentProblem.NotRoot } =>
            Result(CheckStatus.Skipped, "Not checked: reading this machine's BPF maps needs root (see access).", node),
        Interop.BpfEnvironmentException { Problem: Interop.BpfEnvironmentProblem.NoBpfFs or Interop.BpfEnvironmentProblem.NoCalicoMaps } =>
            Result(CheckStatus.Skipped, "Not checked: no Calico maps are pinned there, eBPF is not running (see bpf-running).", node, ex.Message),
        ClusterException { StatusCode: 401 or 403 } => Result(CheckStatus.Skipped, "Not checked: " + ex.Message + ".", node),
        _ => Result(CheckStatus.Error, $"The check could not run: {ex.Message}", node),
    };

    protected static string Quote(FelixLogLine line) => line.Text;

    protected static bool IsTrue(string value) => value.Equals("true", StringComparison.OrdinalIgnoreCase);
}
