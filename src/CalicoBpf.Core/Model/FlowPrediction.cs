namespace CalicoBpf;

/// <summary>
/// What a node's dataplane would do with a flow's first packet, and why (Test-BpfFlow): the
/// verdict, the reason in one sentence, the backend a service sends it to, and every stage with
/// its evidence. Predicted from the node's tables: nothing was sent or written.
/// </summary>
public sealed class FlowPrediction
{
    /// <summary>The node the flow starts on (whose tables predict its first stages).</summary>
    public string Node { get; init; } = string.Empty;

    /// <summary>The nodes the prediction went through: the source's, then the destination's when the flow crosses to a node this run could read.</summary>
    public ValueList<string> Path { get; init; } = ValueList<string>.Empty;
    public IpProtocol Protocol { get; init; }
    public string SourceAddress => SourceAddressValue.ToString();
    /// <summary>SourceAddress typed; PowerShell shows it as the hidden property SourceAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress SourceAddressValue { get; init; } = IPAddress.Any;
    public int SourcePort { get; init; }
    public string DestinationAddress => DestinationAddressValue.ToString();
    /// <summary>DestinationAddress typed; PowerShell shows it as the hidden property DestinationAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress DestinationAddressValue { get; init; } = IPAddress.Any;
    public int DestinationPort { get; init; }
    public FlowVerdict Verdict { get; init; }

    /// <summary>Why, in one sentence: the stage that decided, or what is missing to decide.</summary>
    public string Reason { get; init; } = string.Empty;

    /// <summary>The backend a service sends the flow to (after NAT); null when there is no NAT or the backend is picked at random.</summary>
    public string? BackendAddress => BackendAddressValue?.ToString();
    /// <summary>BackendAddress typed; PowerShell shows it as the hidden property BackendAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress? BackendAddressValue { get; init; }
    public int? BackendPort { get; init; }

    /// <summary>The counter id of the policy rule that decided (null: none did, or no policy ran).</summary>
    public ulong? RuleMatchId { get; init; }

    /// <summary>That rule's hit count (cali_rule_ctrs), when it has an id.</summary>
    public ulong? RuleHitCount { get; init; }

    public ValueList<FlowStage> Stages { get; init; } = ValueList<FlowStage>.Empty;

    /// <summary>For a denied flow, the counter its drop moves and its value when the tables were read ("cali7f3a1b2c9d0 ingress DroppedByPolicy: 32 so far"; Get-BpfCounter shows it); null when the drop counts nothing.</summary>
    public string? DropCounter { get; init; }

    /// <summary>-Resolve, or a flow given by names: "namespace/name" of the source pod (empty when none has that IP).</summary>
    public string SourcePod { get; set; } = string.Empty;

    /// <summary>-Resolve, or a flow given by names: "namespace/name" of the service the destination is, or of the pod it is.</summary>
    public string DestinationService { get; set; } = string.Empty;

    public string DestinationPod { get; set; } = string.Empty;

    /// <summary>-Resolve: the pod of the backend.</summary>
    public string BackendPod { get; set; } = string.Empty;

    public string Source => ConntrackText.HostPort(SourceAddressValue, SourcePort);
    public string Destination => ConntrackText.HostPort(DestinationAddressValue, DestinationPort);
    public string? Backend => BackendAddressValue is null ? null : ConntrackText.HostPort(BackendAddressValue, BackendPort ?? 0);

    /// <summary>
    /// The default view: one summary line (verdict, flow, backend, node), the reason, then each stage
    /// as a trace (stage, where when it changes, decision; the evidence below), every line at most
    /// <paramref name="width"/> characters, broken at spaces.
    /// </summary>
    public string Trace(int width)
    {
        width = Math.Max(width, 40);
        var sb = new StringBuilder();
        sb.Append(ConsoleText.WordWrap($"{Verdict,-7} {ConntrackText.Protocol(Protocol)} {Source} -> {Destination}{(Backend is null ? string.Empty : " -> " + Backend)}  ({(Path.Count > 1 ? string.Join(" -> ", Path) : Node)})", width)).Append('\n');
        string to = DestinationService.Length > 0 ? "service " + DestinationService : DestinationPod.Length > 0 ? "pod " + DestinationPod : string.Empty;
        if (SourcePod.Length > 0 || to.Length > 0)
        {
            Indented(sb, $"{(SourcePod.Length > 0 ? "pod " + SourcePod : Source)} -> {(to.Length > 0 ? to : Destination)}{(BackendPod.Length > 0 ? " -> pod " + BackendPod : string.Empty)}", 8, width);
        }

        Indented(sb, Reason, 8, width);
        if (DropCounter is { } counter)
        {
            Indented(sb, "counter " + counter, 8, width);
        }

        string where = string.Empty;
        foreach (FlowStage s in Stages)
        {
            string head = s.Where != where ? $"{s.Stage,-9} {s.Where}: {s.Decision}" : $"{s.Stage,-9} {s.Decision}";
            where = s.Where;
            Indented(sb, head, 2, width, hanging: 12);
            Indented(sb, s.Evidence, 12, width);
        }

        return sb.ToString().TrimEnd('\n');
    }

    /// <summary>Text broken at spaces: its first line at <paramref name="indent"/>, the rest at <paramref name="hanging"/> (default: the same).</summary>
    private static void Indented(StringBuilder sb, string text, int indent, int width, int? hanging = null)
    {
        int rest = hanging ?? indent;
        string first = ConsoleText.WordWrap(text, width - indent).Split('\n')[0];
        sb.Append(' ', indent).Append(first).Append('\n');
        foreach (string l in ConsoleText.WordWrap(text[first.Length..].TrimStart(), width - rest).Split('\n').Where(l => l.Length > 0))
        {
            sb.Append(' ', rest).Append(l).Append('\n');
        }
    }

    public override string ToString() => $"{Verdict} {ConntrackText.Protocol(Protocol)} {Source} -> {Destination}{(Backend is null ? string.Empty : " -> " + Backend)}: {Reason}";
}
