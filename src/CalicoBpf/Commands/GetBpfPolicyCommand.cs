namespace CalicoBpf.Commands;

/// <summary>
/// The policy rules attached to interfaces, with per-rule hit counts (calico-bpf policy dump); with
/// -SampleInterval, -MaxSamples or -Continuous, how the hit counts move, as Get-Counter samples.
/// </summary>
[Cmdlet(VerbsCommon.Get, "BpfPolicy", DefaultParameterSetName = SnapshotSet, HelpUri = HelpUris.Base + "Get-BpfPolicy.md")]
[OutputType(typeof(PolicyRule), ParameterSetName = new[] { SnapshotSet })]
[OutputType(typeof(PolicyRuleSample), ParameterSetName = new[] { SampleSet, ContinuousSet })]
public sealed class GetBpfPolicyCommand : SampledMapCmdletBase
{
    /// <summary>Interface names, wildcards allowed; without it, every interface Felix wrote policy debug info for.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(InterfaceNameCompleter))]
    public string[]? Interface { get; set; }

    /// <summary>Which hooks: Ingress, Egress (the TC hooks) or Xdp. Default: all.</summary>
    [Parameter(Position = 1)]
    [ValidateNotNullOrEmpty]
    public PolicyHook[]? Direction { get; set; }

    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    /// <summary>Where Felix writes its policy debug files.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string PolicyDebugPath { get; set; } = PolicyDebug.DefaultDirectory;

    protected override void ProcessRecord()
    {
        if (!Sampling)
        {
            ForEachNode(node => Rules(node, Interface));
            return;
        }

        Gather(Interface);
    }

    protected override void EndProcessing()
    {
        if (!Sampling)
        {
            return;
        }

        string[]? interfaces = UseGathered();
        bool unchanged = IncludeUnchanged;
        Sample(time => new PolicyRuleSampler(time), (node, sampler, tick) => sampler.Sample(Rules(node, interfaces), tick, unchanged));
    }

    /// <summary>The rules of the interfaces named (literal names read and reported as given; otherwise the interfaces Felix wrote files for).</summary>
    private IEnumerable<PolicyRule> Rules(INodeDataplane node, string[]? names)
    {
        string dir = IsLocal ? GetUnresolvedProviderPathFromPSPath(PolicyDebugPath) : PolicyDebugPath;
        PolicyHook[] hooks = Direction ?? new[] { PolicyHook.Ingress, PolicyHook.Egress, PolicyHook.Xdp };
        Func<string, bool>? filter = WildcardFilter(names);
        bool literal = names is { Length: > 0 } && !names.Any(WildcardPattern.ContainsWildcardCharacters);
        IEnumerable<string> interfaces = literal ? names!
            : node.ListDirectory(dir) is null ? new[] { "*" }
            : PolicyDebug.ListInterfaces(node, dir).Where(n => filter is null || filter(n));
        bool ipv6 = IPv6;
        return interfaces.SelectMany(iface => PolicyDebug.Read(node, dir, iface, hooks, ipv6, Reporter, CancelToken));
    }
}
