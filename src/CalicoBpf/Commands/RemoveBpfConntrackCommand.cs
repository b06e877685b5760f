using System.Management.Automation;
using CalicoBpf.Maps;
using CalicoBpf.Transport;

namespace CalicoBpf.Commands;

/// <summary>
/// Removes conntrack entries: those piped in from Get-BpfConntrack, those matching the same filters,
/// or all of them (-All, calico-bpf conntrack clean). A NAT entry always goes with its partner.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "BpfConntrack", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, DefaultParameterSetName = FilterSet)]
[OutputType(typeof(ConntrackRemoval))]
public sealed class RemoveBpfConntrackCommand : BpfCmdletBase
{
    private const string FilterSet = "Filter";
    private const string InputSet = "InputObject";
    private const string AllSet = "All";

    private readonly Dictionary<string, ConntrackRemover> _removers = new(StringComparer.Ordinal);
    private INodeDataplane? _node;

    /// <summary>Entries from Get-BpfConntrack.</summary>
    [Parameter(Mandatory = true, ValueFromPipeline = true, ParameterSetName = InputSet)]
    public ConntrackEntry[]? InputObject { get; set; }

    /// <summary>Every entry of the table.</summary>
    [Parameter(Mandatory = true, ParameterSetName = AllSet)]
    public SwitchParameter All { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
    [Parameter(ParameterSetName = AllSet)]
    public SwitchParameter IPv6 { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
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
    [ValidateNotNullOrEmpty]
    public TcpState[]? State { get; set; }

    [Parameter(ParameterSetName = FilterSet)]
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
                        RemoveOne(e);
                    }
                }, PinPath);
                break;
            case AllSet:
                Run(RemoveAll, PinPath);
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

        Run(() =>
        {
            // Read first, then delete: the table is not changed under its own iteration.
            List<ConntrackEntry> matches = ConntrackReader.Read(Node(), query, Reporter, CancelToken).ToList();
            foreach (ConntrackEntry e in matches)
            {
                RemoveOne(e);
            }
        }, PinPath);
    }

    private void RemoveOne(ConntrackEntry entry)
    {
        if (!string.IsNullOrEmpty(entry.Node) && entry.Node != Node().Node)
        {
            WriteError(new ErrorRecord(
                new InvalidOperationException($"This conntrack entry was read on node {entry.Node}, not on {Node().Node}; remove it on its own node."),
                "WrongNode", ErrorCategory.InvalidArgument, entry));
            return;
        }

        ConntrackRemover remover = RemoverFor(entry.MapName);
        string partner = entry.Type switch
        {
            ConntrackType.NatForward => " and its NatReverse entry",
            ConntrackType.NatReverse => " and its NatForward entries",
            _ => string.Empty,
        };
        if (ShouldProcess($"{entry.MapName} on {entry.Node}", $"Remove conntrack entry {entry}{partner}"))
        {
            remover.Remove(entry);
        }
    }

    private void RemoveAll()
    {
        CalicoMapName pin = ConntrackReader.FindMap(Node(), IPv6);
        ConntrackRemover remover = RemoverFor(pin.PinName);
        long count;
        using (var reader = Node().OpenMap(pin.PinName))
        {
            count = reader.CountEntries(CancelToken) ?? 0;
        }

        if (ShouldProcess($"{pin.PinName} on {Node().Node}", $"Remove all {count} conntrack entries (existing connections lose their NAT and policy state)"))
        {
            remover.RemoveAll();
        }
    }

    private INodeDataplane Node() => _node ??= OpenLocalNode();

    private ConntrackRemover RemoverFor(string mapName)
    {
        if (!_removers.TryGetValue(mapName, out ConntrackRemover? remover))
        {
            CalicoMapName pin = MapCatalog.Parse(mapName) ?? throw new ArgumentException($"{mapName} is not a Calico conntrack map.");
            remover = new ConntrackRemover(Node(), pin, CancelToken);
            _removers[mapName] = remover;
        }

        return remover;
    }

    protected override void EndProcessing()
    {
        foreach (ConntrackRemover r in _removers.Values)
        {
            if (r.Removed > 0 || r.AlreadyGone > 0)
            {
                WriteObject(r.Result);
            }

            r.Dispose();
        }

        _removers.Clear();
    }
}
