using System.Collections;
using System.Collections.Concurrent;
using System.Management.Automation.Language;
using System.Management.Automation.Runspaces;

namespace CalicoBpf.Arguments;

/// <summary>
/// Tab completion of the names a cmdlet takes from a node or a cluster. What a completer read is kept
/// for <see cref="CacheFor"/> per cluster and node, failures too: an unreachable cluster costs one
/// short timeout per period, never an error or a hang at the prompt. Completers read the -Kubeconfig,
/// -Context, -Node and -PinPath already typed on the line, and $PSDefaultParameterValues.
/// </summary>
internal static class Completion
{
    /// <summary>How long a list read for completion is reused.</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    /// <summary>The request timeout of a completion read: long enough for one exec, short enough for a prompt.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    private static readonly ConcurrentDictionary<string, (DateTime At, IReadOnlyList<(string Name, string Tip)> Items)> Cache = new(StringComparer.Ordinal);

    /// <summary>The list under <paramref name="key"/>, read again when older than <see cref="CacheFor"/>; empty when the read fails.</summary>
    public static IReadOnlyList<(string Name, string Tip)> Cached(string key, Func<IEnumerable<(string Name, string Tip)>> read)
    {
        if (Cache.TryGetValue(key, out var hit) && DateTime.UtcNow - hit.At < CacheFor)
        {
            return hit.Items;
        }

        IReadOnlyList<(string, string)> items;
        try
        {
            items = read().DistinctBy(i => i.Name, StringComparer.Ordinal).OrderBy(i => i.Name, StringComparer.Ordinal).ToList();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            items = Array.Empty<(string, string)>();
        }

        Cache[key] = (DateTime.UtcNow, items);
        return items;
    }

    /// <summary>
    /// The completions of a list that <paramref name="source"/> finds (its cache key and its read):
    /// nothing at all when the line names no usable cluster or node.
    /// </summary>
    public static IEnumerable<CompletionResult> Offer(string word, Func<(string Key, Func<IEnumerable<(string Name, string Tip)>> Read)> source)
    {
        IReadOnlyList<(string, string)> items = Array.Empty<(string, string)>();
        try
        {
            (string key, Func<IEnumerable<(string, string)>> read) = source();
            items = Cached(key, read);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // No usable kubeconfig, node or pin directory: nothing to offer.
        }

        return Results(items, word);
    }

    /// <summary>Forgets every cached list (tests; a user who just changed the cluster can wait 30 s).</summary>
    public static void Reset() => Cache.Clear();

    /// <summary>The items that start with the word typed (or match it, when it has wildcards), quoted where a shell needs it.</summary>
    public static IEnumerable<CompletionResult> Results(IEnumerable<(string Name, string Tip)> items, string word, CompletionResultType type = CompletionResultType.ParameterValue)
    {
        string typed = word.Trim('\'', '"');
        var pattern = new WildcardPattern(WildcardPattern.ContainsWildcardCharacters(typed) ? typed : typed + "*", WildcardOptions.IgnoreCase);
        foreach ((string name, string tip) in items.Where(i => pattern.IsMatch(i.Name)))
        {
            string text = name.IndexOfAny(new[] { ' ', '\'', '"', '$', '`', '(', ')', ';', ',', '{', '}', '@', '#', '&', '|' }) >= 0 ? "'" + name.Replace("'", "''") + "'" : name;
            yield return new CompletionResult(text, name, type, string.IsNullOrEmpty(tip) ? name : tip);
        }
    }

    /// <summary>
    /// The parameters of one command line: typed there, else its $PSDefaultParameterValues entry for
    /// the command (read once per line: each read is a nested pipeline), else null.
    /// </summary>
    private sealed class Line
    {
        private readonly string _command;
        private readonly IDictionary _bound;
        private IDictionary? _defaults;
        private bool _defaultsRead;

        public Line(string command, IDictionary bound)
        {
            _command = command;
            _bound = bound;
        }

        /// <summary>The node named by -Node without wildcards (the first such), when it is not this machine; null: the local node.</summary>
        public string? RemoteNode => Names(_bound["Node"]).FirstOrDefault(n => !WildcardPattern.ContainsWildcardCharacters(n)) is { } name
            && !name.Equals(LocalDataplane.LocalNodeName(), StringComparison.OrdinalIgnoreCase) ? name : null;

        public string? Get(string parameter)
        {
            if (_bound[parameter] is { } bound)
            {
                return First(bound);
            }

            if (!_defaultsRead)
            {
                _defaults = Defaults();
                _defaultsRead = true;
            }

            foreach (DictionaryEntry e in _defaults ?? new Hashtable())
            {
                if (e.Key is string key && key.Split(':', 2) is [string command, string name]
                    && name.Equals(parameter, StringComparison.OrdinalIgnoreCase)
                    && new WildcardPattern(command, WildcardOptions.IgnoreCase).IsMatch(_command))
                {
                    return First(e.Value);
                }
            }

            return null;
        }
    }

    /// <summary>$PSDefaultParameterValues of the session (a completer runs inside a pipeline: read through a nested one).</summary>
    private static IDictionary? Defaults()
    {
        if (Runspace.DefaultRunspace is null)
        {
            return null;
        }

        using var ps = System.Management.Automation.PowerShell.Create(RunspaceMode.CurrentRunspace);
        ps.AddCommand("Microsoft.PowerShell.Utility\\Get-Variable").AddParameter("Name", "PSDefaultParameterValues").AddParameter("Scope", "Global").AddParameter("ValueOnly").AddParameter("ErrorAction", "Ignore");
        return ps.Invoke().FirstOrDefault()?.BaseObject as IDictionary;
    }

    /// <summary>A path typed on the line as the cmdlet would read it: relative to PowerShell's location, ~ expanded.</summary>
    private static string ResolvePath(string path)
    {
        // An absolute file-system path needs no session (a nested pipeline costs a Tab about 0.3 ms).
        if (Path.IsPathRooted(path) && !path.Contains('~') && !path.Contains("::", StringComparison.Ordinal))
        {
            return Path.GetFullPath(path);
        }

        if (Runspace.DefaultRunspace is not null)
        {
            using var ps = System.Management.Automation.PowerShell.Create(RunspaceMode.CurrentRunspace);
            ps.AddScript("param($p) $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($p)").AddArgument(path);
            if (ps.Invoke().FirstOrDefault()?.BaseObject is string resolved && !ps.HadErrors)
            {
                return resolved;
            }
        }

        return Path.GetFullPath(path);
    }

    /// <summary>The cluster of the -Kubeconfig and -Context on the line, with the completion timeout, and a key for the cache.</summary>
    public static (IClusterConnection Cluster, string Key) Cluster(string commandName, IDictionary fakeBoundParameters) =>
        Cluster(new Line(commandName, fakeBoundParameters));

    private static (IClusterConnection Cluster, string Key) Cluster(Line line)
    {
        string? kubeconfig = line.Get("Kubeconfig");
        string? context = line.Get("Context");
        var target = new ClusterTarget(kubeconfig is null ? null : ResolvePath(kubeconfig), context, RequestTimeout);
        return (ClusterConnections.Get(target), $"{target.ResolvedKubeconfig}|{context}");
    }

    /// <summary>
    /// The dataplane the line names (the -Node of the cluster, or this machine with -PinPath): a key for
    /// the cache, and a read that opens it, runs <paramref name="read"/> and disposes of it, so that a
    /// list served from the cache costs no node lookup and no exec.
    /// </summary>
    public static (string Key, Func<IEnumerable<(string Name, string Tip)>> Read) OnDataplane(string commandName, IDictionary fakeBoundParameters,
        Func<INodeDataplane, IEnumerable<(string Name, string Tip)>> read)
    {
        var line = new Line(commandName, fakeBoundParameters);
        string? given = line.Get("PinPath");
        string? name = line.RemoteNode;
        // A node's -PinPath is a path on that node, as the cmdlets take it; this machine's is resolved here.
        string pins = given is null ? MapCatalog.DefaultPinDirectory : name is not null ? given : ResolvePath(given);
        if (name is not null)
        {
            (IClusterConnection cluster, string key) = Cluster(line);
            return ($"{key}|{name}|{pins}", () =>
            {
                CalicoNode node = cluster.ListNodes(CancellationToken.None).FirstOrDefault(n => n.Node.Equals(name, StringComparison.OrdinalIgnoreCase))
                    ?? throw new ItemNotFoundException(name);
                using var dataplane = new CommandDataplane(cluster.ExecRunner(node), pins, CancellationToken.None, node.CalicoRelease);
                return read(dataplane).ToList();
            });
        }

        return ("local|" + pins, () => read(new LocalDataplane(pins)).ToList());
    }

    private static string? First(object? value) => Names(value).FirstOrDefault();

    private static IEnumerable<string> Names(object? value)
    {
        object? v = value is PSObject p ? p.BaseObject : value;
        if (v is string s)
        {
            yield return s;
        }
        else if (v is IEnumerable items)
        {
            foreach (object? item in items)
            {
                if ((item is PSObject pi ? pi.BaseObject : item)?.ToString() is { Length: > 0 } text)
                {
                    yield return text;
                }
            }
        }
    }
}

/// <summary>-Node: the cluster's nodes, with whether each runs calico-node.</summary>
public sealed class NodeNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Offer(wordToComplete, () =>
        {
            (IClusterConnection cluster, string key) = Completion.Cluster(commandName, fakeBoundParameters);
            return ("nodes|" + key, () => cluster.ListNodes(CancellationToken.None)
                .Select(n => (n.Node, n.HasCalicoNode ? $"{n.Node}: calico-node {n.CalicoVersion}" : $"{n.Node}: no calico-node")));
        });
}

/// <summary>-Interface and Get-BpfInterface -Name: the interfaces Felix manages on the node of the line (this machine: also its kernel's links).</summary>
public sealed class InterfaceNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Offer(wordToComplete, () =>
        {
            (string key, var read) = Completion.OnDataplane(commandName, fakeBoundParameters, Read);
            return ("interfaces|" + key, read);
        });

    private static IEnumerable<(string, string)> Read(INodeDataplane node)
    {
        var found = new List<(string, string)>();
        try
        {
            found.AddRange(InterfaceStateMap.Read(node).Select(s => (s.Name, $"{s.Name}: ifindex {s.IfIndex}, {s.Flags}")));
        }
        catch (Exception ex) when (node is LocalDataplane && ex is not OutOfMemoryException)
        {
            // No Calico maps here: the kernel's links are still worth offering.
        }

        if (node is LocalDataplane && Directory.Exists("/sys/class/net"))
        {
            found.AddRange(Directory.GetFileSystemEntries("/sys/class/net").Select(Path.GetFileName).OfType<string>()
                .Where(n => found.All(f => f.Item1 != n)).Select(n => (n, $"{n}: a link of this machine, not managed by Felix")));
        }

        return found;
    }
}

/// <summary>
/// Test-BpfFlow -Source and -Destination: the cluster's pods (pod/NAMESPACE/NAME, with IP and node)
/// and, for -Destination, its services (svc/NAMESPACE/NAME, with cluster IP and ports). Addresses
/// typed as they are get nothing.
/// </summary>
public sealed class WorkloadEndpointCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        string typed = wordToComplete.Trim('\'', '"');
        if (typed.Length > 0 && (char.IsAsciiDigit(typed[0]) || typed[0] is '[' or ':'))
        {
            return Array.Empty<CompletionResult>();
        }

        bool services = parameterName.Equals("Destination", StringComparison.OrdinalIgnoreCase);
        return Completion.Offer(wordToComplete, () =>
        {
            (IClusterConnection cluster, string key) = Completion.Cluster(commandName, fakeBoundParameters);
            return ((services ? "endpoints|" : "pods|") + key, () =>
            {
                WorkloadIndex index = cluster.LoadWorkloads(CancellationToken.None);
                IEnumerable<(string, string)> pods = index.Pods.Select(p => ($"pod/{p.FullName}", $"pod {p.FullName}: {string.Join(", ", p.Addresses)}{(p.Node.Length > 0 ? " on " + p.Node : string.Empty)}"));
                IEnumerable<(string, string)> nodes = cluster.ListNodes(CancellationToken.None).Where(n => n.InternalIP.Length > 0)
                    .Select(n => ($"node/{n.Node}", $"node {n.Node}: {n.InternalIP}"));
                return (services
                    ? pods.Concat(index.Services.Select(v => ($"svc/{v.FullName}", $"service {v.FullName}: {string.Join(", ", v.Addresses)} ports {string.Join(", ", v.Ports.Select(p => $"{p.Port}/{p.Protocol}"))}")))
                    : pods).Concat(nodes);
            });
        });
    }
}

/// <summary>Get-BpfMap -Name: the Calico maps pinned on the node of the line, in its -PinPath.</summary>
public sealed class MapNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Offer(wordToComplete, () =>
        {
            (string key, var read) = Completion.OnDataplane(commandName, fakeBoundParameters,
                node => node.ListMaps().Select(m => (m.PinName, $"{m.PinName}: {m.Family} v{m.Version}{(m.IsOld ? " (left over from a resize)" : string.Empty)}")));
            return ("maps|" + key, read);
        });
}

/// <summary>Get-FelixBpfConfig -Name and Set-FelixBpfConfig -Name: the cluster's FelixConfigurations.</summary>
public sealed class FelixConfigurationNameCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Offer(wordToComplete, () =>
        {
            (IClusterConnection cluster, string key) = Completion.Cluster(commandName, fakeBoundParameters);
            return ("felixconfigurations|" + key, () => new FelixConfigClient(cluster, CancellationToken.None).List()
                .Select(c => (c.Name, $"{c.Name}: {c.Scope}, {c.SetFields.Count} fields set")));
        });
}

/// <summary>-Clear and -Field: the eBPF-related FelixConfiguration fields, with their kind and Felix's default.</summary>
public sealed class FelixFieldCompleter : IArgumentCompleter
{
    private static readonly (string, string)[] Fields = FelixFields.All.Select(f => (f.Json, $"{f.Json}: {f.Kind}, default {f.Default ?? "(none)"}")).ToArray();

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters) =>
        Completion.Results(Fields, wordToComplete);
}

/// <summary>A Set-FelixBpfConfig field parameter: the values its field takes (<see cref="FelixFields.Choices"/>), Felix's default first.</summary>
public sealed class FelixValueCompleter : IArgumentCompleter
{
    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        if (FelixFields.Find(parameterName) is not { } field || !FelixFields.Choices.TryGetValue(field.Json, out IReadOnlyList<string>? choices))
        {
            return Array.Empty<CompletionResult>();
        }

        return Completion.Results(choices.Select(c => (c, string.Equals(c, field.Default, StringComparison.OrdinalIgnoreCase) ? $"{c} (Felix's default)" : c)), wordToComplete);
    }
}
