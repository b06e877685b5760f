namespace CalicoBpf.Commands;

/// <summary>
/// Which nodes of the cluster a -Node list names; one rule for every cmdlet. Names are matched
/// case-insensitively, and wildcards are allowed. A name without wildcards that no node has is a
/// NodeNotFound error. Cmdlets that work on a node's Calico dataplane need calico-node there: for
/// them wildcards pass over nodes without it, and such a node named outright is a NoCalicoNodePod
/// error. A pattern with wildcards that matches no node is a warning (a -Node the user mistyped
/// would otherwise read nothing, silently). Each node comes once, in the order the patterns name them.
/// </summary>
internal static class NodeSelection
{
    public static List<CalicoNode> Select(IReadOnlyList<CalicoNode> all, IEnumerable<string> patterns, bool needsCalicoNode, Action<ErrorRecord> writeError, Action<string> writeWarning)
    {
        var selected = new List<CalicoNode>();
        foreach (string pattern in patterns)
        {
            var w = new WildcardPattern(pattern, WildcardOptions.IgnoreCase);
            List<CalicoNode> hits = all.Where(n => w.IsMatch(n.Node)).ToList();
            if (!WildcardPattern.ContainsWildcardCharacters(pattern))
            {
                if (hits.Count == 0)
                {
                    writeError(new ErrorRecord(new ItemNotFoundException($"The cluster has no node named {pattern}. Get-CalicoNode lists them."),
                        "NodeNotFound", ErrorCategory.ObjectNotFound, pattern));
                    continue;
                }

                if (needsCalicoNode && !hits.Any(n => n.HasCalicoNode))
                {
                    writeError(new ErrorRecord(new ItemNotFoundException($"Node {pattern} runs no calico-node pod: there is no Calico dataplane to read there."),
                        "NoCalicoNodePod", ErrorCategory.ObjectNotFound, pattern));
                    continue;
                }
            }

            else if (!hits.Any(n => !needsCalicoNode || n.HasCalicoNode))
            {
                writeWarning(hits.Count == 0
                    ? $"No node of the cluster matches -Node {pattern}. Get-CalicoNode lists them."
                    : $"No node that matches -Node {pattern} runs calico-node: there is no Calico dataplane to read there.");
            }

            selected.AddRange(hits.Where(n => !needsCalicoNode || n.HasCalicoNode));
        }

        return selected.DistinctBy(n => n.Node).ToList();
    }
}
