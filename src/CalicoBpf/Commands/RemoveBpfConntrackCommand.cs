namespace CalicoBpf.Commands;

/// <summary>
/// Removes conntrack entries: those piped in from Get-BpfConntrack, those matching the same filters,
/// or all of them (-All, calico-bpf conntrack clean), on this node or, with -Node, on nodes of a
/// cluster. A NAT entry always goes with its partner.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "BpfConntrack", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = FilterSet, HelpUri = HelpUris.Base + "Remove-BpfConntrack.md")]
[OutputType(typeof(ConntrackRemoval))]
public sealed class RemoveBpfConntrackCommand : MapCmdletBase
{
    /// <summary>Changes are made on live nodes: no -Bundle (a bundle is read-only).</summary>
    public override string? Bundle { get => null; set => throw new NotSupportedException(); }

    private const string FilterSet = "Filter";
    private const string InputSet = "InputObject";
    private const string AllSet = "All";

    /// <summary>Local removers by pin directory and map: piped entries go back where they were read.</summary>
    private readonly Dictionary<(string Directory, string Map), ConntrackRemover> _localRemovers = new();
    private readonly Dictionary<string, INodeDataplane> _localNodes = new(StringComparer.Ordinal);

    /// <summary>Entries read on other nodes, by node and the pin directory they were read from.</summary>
    private readonly Dictionary<(string Node, string Directory), List<ConntrackEntry>> _remoteEntries = new();

    /// <summary>Entries from Get-BpfConntrack (local, or read with -Node).</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputSet)]
    public ConntrackEntry[]? InputObject { get; set; }

    /// <summary>Every entry of the table.</summary>
    [Parameter(Mandatory = true, ParameterSetName = AllSet)]
    public SwitchParameter All { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
    [Parameter(ParameterSetName = AllSet)]
    public SwitchParameter IPv6 { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
    [IpProtocolArgument]
    [ValidateNotNullOrEmpty]
    public IpProtocol[]? Protocol { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
    [ValidateNotNullOrEmpty]
    public string[]? Address { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
    [ValidateRange(0, 65535)]
    public int[]? Port { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
    [ValidateNotNullOrEmpty]
    public ConntrackType[]? Type { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
    [TcpStateArgument]
    [ValidateNotNullOrEmpty]
    public TcpState[]? State { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
    [DurationArgument]
    public TimeSpan OlderThan { get; set; }

    protected override void ProcessRecord()
    {
        switch (ParameterSetName)
        {
            case InputSet:
                Run(() =>
                {
                    foreach (ConntrackEntry e in InputObject ?? Array.Empty<ConntrackEntry>())
                    {
                        if (string.IsNullOrEmpty(e.Node) || string.Equals(e.Node, LocalDataplane.LocalNodeName(), StringComparison.OrdinalIgnoreCase))
                        {
                            RemoveLocal(e);
                        }
                        else
                        {
                            // Read on another node: removed there, one confirmation per node, at the end.
                            (string, string) where = (e.Node.ToLowerInvariant(), e.PinPath.Length > 0 ? e.PinPath : PinPath);
                            if (!_remoteEntries.TryGetValue(where, out List<ConntrackEntry>? list))
                            {
                                _remoteEntries[where] = list = new List<ConntrackEntry>();
                            }

                            list.Add(e);
                        }
                    }
                }, PinPath);
                break;
            case AllSet:
                ForEachNodeInTurn(node =>
                {
                    CalicoMapName pin = ConntrackReader.FindMap(node, IPv6);
                    long count;
                    using (IMapReader reader = node.OpenMap(pin.PinName))
                    {
                        count = reader.CountEntries(CancelToken) ?? 0;
                    }

                    if (ShouldProcess(MapTarget(node.PinDirectory, pin.PinName, node.Node), $"Remove all {count} conntrack entries (existing connections lose their NAT and policy state)"))
                    {
                        using var remover = new ConntrackRemover(node, pin, CancelToken);
                        remover.RemoveAll();
                        WriteObject(remover.Result);
                    }
                });
                break;
            default:
                RemoveFiltered();
                break;
        }
    }

    private void RemoveFiltered()
    {
        if (Protocol is null && Address is null && Port is null && Type is null && State is null && !MyInvocation.BoundParameters.ContainsKey(nameof(OlderThan)))
        {
            ThrowTerminatingError(new ErrorRecord(
                new ArgumentException("Say which entries to remove: pipe them from Get-BpfConntrack, give a filter (-Protocol, -Address, -Port, -Type, -State, -OlderThan), or use -All."),
                "NoFilter", ErrorCategory.InvalidArgument, null));
        }

        if (!TryBuildConntrackQuery(IPv6, Protocol, Address, Port, Type, State, OlderThan, out ConntrackQuery query))
        {
            return;
        }

        bool local = IsLocal;
        ForEachNodeInTurn(node =>
        {
            // Read first, then delete: the table is not changed under its own iteration.
            List<ConntrackEntry> matches = ConntrackReader.Read(node, query, Reporter, CancelToken).ToList();
            if (local)
            {
                _localNodes[node.PinDirectory] = node;
                foreach (ConntrackEntry e in matches)
                {
                    RemoveLocal(e);
                }
            }
            else
            {
                RemoveOnNode(node, matches);
            }
        });
    }

    /// <summary>
    /// Local: one confirmation per entry, as the entries are few and each names a connection. An entry
    /// goes from the pin directory it was read from (its PinPath); one without goes from -PinPath.
    /// </summary>
    private void RemoveLocal(ConntrackEntry entry)
    {
        string directory = entry.PinPath.Length > 0 ? entry.PinPath : ResolvePinPath(PinPath);
        if (!_localNodes.TryGetValue(directory, out INodeDataplane? local))
        {
            _localNodes[directory] = local = OpenLocalNode(directory);
        }

        if (!_localRemovers.TryGetValue((directory, entry.MapName), out ConntrackRemover? remover))
        {
            CalicoMapName pin = MapCatalog.Parse(entry.MapName) ?? throw new ArgumentException($"{entry.MapName} is not a Calico conntrack map.");
            _localRemovers[(directory, entry.MapName)] = remover = new ConntrackRemover(local, pin, CancelToken);
        }

        string partner = entry.Type switch
        {
            ConntrackType.NatForward => " and its NatReverse entry",
            ConntrackType.NatReverse => " and its NatForward entries",
            _ => string.Empty,
        };
        if (ShouldProcess(MapTarget(directory, entry.MapName, local.Node), $"Remove conntrack entry {entry}{partner}"))
        {
            remover.Remove(entry);
        }
    }

    /// <summary>A remote node: one confirmation for the node, then the deletions in few execs.</summary>
    private void RemoveOnNode(INodeDataplane node, List<ConntrackEntry> entries)
    {
        foreach (IGrouping<string, ConntrackEntry> byMap in entries.GroupBy(e => e.MapName))
        {
            CalicoMapName pin = MapCatalog.Parse(byMap.Key) ?? throw new ArgumentException($"{byMap.Key} is not a Calico conntrack map.");
            int n = byMap.Count();
            if (ShouldProcess(MapTarget(node.PinDirectory, pin.PinName, node.Node), $"Remove {n} conntrack entr{(n == 1 ? "y" : "ies")} and their NAT partners"))
            {
                using var remover = new ConntrackRemover(node, pin, CancelToken);
                remover.RemoveMany(byMap);
                WriteObject(remover.Result);
            }
        }
    }

    /// <summary>What -WhatIf and -Confirm name: the map on the node, with its directory when it is not Felix's.</summary>
    private static string MapTarget(string directory, string map, string node) =>
        directory.TrimEnd('/') == MapCatalog.DefaultPinDirectory ? $"{map} on {node}" : $"{directory.TrimEnd('/')}/{map} on {node}";

    protected override void EndProcessing()
    {
        foreach (ConntrackRemover r in _localRemovers.Values)
        {
            if (r.Removed > 0 || r.AlreadyGone > 0)
            {
                WriteObject(r.Result);
            }

            r.Dispose();
        }

        _localRemovers.Clear();
        if (_remoteEntries.Count == 0)
        {
            return;
        }

        // Entries read on other nodes: removed there, by the one rule that picks nodes (NodeSelection:
        // a node the cluster does not have, or one without calico-node, is an error of its own).
        foreach (IGrouping<string, (string Node, string Directory)> byDirectory in _remoteEntries.Keys.GroupBy(k => k.Directory))
        {
            string directory = byDirectory.Key;
            ForEachNodeInTurn(byDirectory.Select(k => k.Node), node => RemoveOnNode(node, _remoteEntries[(node.Node.ToLowerInvariant(), directory)]), directory);
        }
    }
}
