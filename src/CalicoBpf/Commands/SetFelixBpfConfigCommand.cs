using System.Collections;
using System.Globalization;
using System.Text.Json.Nodes;

namespace CalicoBpf.Commands;

/// <summary>
/// Changes eBPF settings of a FelixConfiguration: typed parameters validated against the cluster's
/// CRD before anything is sent, a merge patch of the given fields only, carrying the resourceVersion
/// it was computed from (a concurrent change of the same fields is reported, never overwritten).
/// </summary>
[Cmdlet(VerbsCommon.Set, "FelixBpfConfig", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.Medium, DefaultParameterSetName = ByName, HelpUri = HelpUris.Base + "Set-FelixBpfConfig.md")]
[OutputType(typeof(FelixBpfConfig))]
public sealed class SetFelixBpfConfigCommand : CalicoBpfCmdletBase
{
    private const string ByName = "ByName";
    private const string ByNode = "ByNode";

    /// <summary>The FelixConfiguration to change (default: default, the global one).</summary>
    [Parameter(Position = 0, ParameterSetName = ByName, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(FelixConfigurationNameCompleter))]
    public string Name { get; set; } = "default";

    /// <summary>Change node.NODE (created when missing) for this node only.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ByNode)]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(NodeNameCompleter))]
    public string? Node { get; set; }

    /// <summary>Fields to remove from the object (JSON or property names), so that lower-priority sources apply again.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ArgumentCompleter(typeof(FelixFieldCompleter))]
    public string[]? Clear { get; set; }

    /// <summary>Operator installs: change bpfEnabled through the Installation's linuxDataplane, as the operator requires.</summary>
    [Parameter]
    public SwitchParameter UpdateInstallation { get; set; }

    /// <summary>Write the changed FelixConfiguration to the pipeline.</summary>
    [Parameter]
    public SwitchParameter PassThru { get; set; }

    /// <summary>Changes that can interrupt traffic go ahead without the extra confirmation (for runbooks), and -Node may name a node that has not joined the cluster yet.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? BpfEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfLogLevel { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public Hashtable? BpfLogFilters { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfCTLBLogFilter { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfConntrackLogLevel { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfConntrackMode { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public Hashtable? BpfConntrackTimeouts { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? BpfDataIfacePattern { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? BpfL3IfacePattern { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfConnectTimeLoadBalancing { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? BpfConnectTimeLoadBalancingEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfHostNetworkedNATWithoutCTLB { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfExternalServiceMode { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string[]? BpfDSROptoutCIDRs { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfExtToServiceConnmark { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? BpfKubeProxyIptablesCleanupEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? BpfKubeProxyMinSyncPeriod { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfKubeProxyHealthzPort { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? BpfKubeProxyEndpointSlicesEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? BpfPSNATPorts { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizeNATFrontend { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizeNATBackend { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizeNATAffinity { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizeRoute { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizeConntrack { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizePerCpuConntrack { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfMapSizeConntrackScaling { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizeConntrackCleanupQueue { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizeIPSets { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMapSizeIfState { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMaglevMaxEndpointsPerService { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfMaglevMaxServices { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfEnforceRPF { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? DefaultEndpointToHostAction { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? BpfPolicyDebugEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string[]? BpfForceTrackPacketsFromIfaces { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? BpfDisableGROForIfaces { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string[]? BpfExcludeCIDRsFromNAT { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? BpfExportBufferSizeMB { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? BpfHostConntrackBypass { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? BpfDisableUnprivileged { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfJITHardening { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfRedirectToPeer { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfAttachType { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfProfiling { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? BpfOverlayHostSourceIP { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? BpfIPFragTimeout { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? BpfIPFragmentReassemblyEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? IpipEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? IpipMTU { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? VxlanEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? VxlanMTU { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? VxlanMTUV6 { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? VxlanPort { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public long? VxlanVNI { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? WireguardEnabled { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? WireguardEnabledV6 { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? RouteSource { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? IpForwarding { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public bool? Ipv6Support { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? InterfacePrefix { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? NftablesMode { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? ProgramClusterRoutes { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    [ArgumentCompleter(typeof(FelixValueCompleter))]
    public string? LogSeverityScreen { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? FeatureDetectOverride { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? FeatureGates { get; set; }

    [Parameter(ParameterSetName = ByName)]
    [Parameter(ParameterSetName = ByNode)]
    public string? CgroupV2Path { get; set; }

    private IReadOnlyList<CalicoNode>? _nodes;

    /// <summary>The cluster's nodes, listed once per run (the -Node check and the override warnings share them).</summary>
    private IReadOnlyList<CalicoNode> ClusterNodes => _nodes ??= Api(() => Cluster.ListNodes(CancelToken));

    protected override void ProcessRecord()
    {
        string name = ParameterSetName == ByNode ? "node." + Node : Name;
        List<(FelixField Field, JsonNode? Value)> values = GivenValues();
        if (values.Count == 0)
        {
            WriteError(new ErrorRecord(new ArgumentException("No field to change: give one or more field parameters (-BpfLogLevel Debug, ...) or -Clear."),
                "NoChange", ErrorCategory.InvalidArgument, name));
            return;
        }

        var felix = new FelixConfigClient(Cluster, CancelToken);
        if (!HandleBpfEnabled(felix, values))
        {
            return;
        }

        if (values.Count == 0)
        {
            return;
        }

        FelixChangePlan plan;
        try
        {
            plan = Api(() => felix.Plan(name, values, create: ParameterSetName == ByNode), name);
        }
        catch (FelixValidationException ex)
        {
            WriteError(new ErrorRecord(ex, "InvalidFelixValue", ErrorCategory.InvalidArgument, name));
            return;
        }

        if (!plan.Exists && ParameterSetName == ByNode && !Force && !ClusterNodes.Any(n => n.Node == Node))
        {
            WriteError(new ErrorRecord(new ItemNotFoundException(
                    $"There is no node {Node} in this cluster (Get-CalicoNode lists them), so FelixConfiguration {name} was not created: Felix reads node.NAME only on the node of that exact name. Check the name, or give -Force to create it for a node that has not joined yet."),
                "NodeNotFound", ErrorCategory.ObjectNotFound, Node));
            return;
        }

        if (plan.Changes.Count == 0)
        {
            WriteVerbose($"FelixConfiguration {name} already has these values; nothing to change.");
            if (PassThru)
            {
                WriteObject(Api(() => felix.Get(name)));
            }

            return;
        }

        WarnOverrides(felix, plan);
        string target = $"FelixConfiguration {name} ({plan.Resource.GroupVersion}{(plan.Exists ? string.Empty : ", created")})";
        string action = string.Join(", ", plan.Changes.Select(c => c.ToString()));
        bool confirmed = plan.CutsTraffic
            ? ShouldProcess(target, action + " (can interrupt traffic)") && ConfirmHighImpact($"{action} on {target} can interrupt traffic through the eBPF dataplane. Apply it?")
            : ShouldProcess(target, action);
        if (!confirmed)
        {
            return;
        }

        try
        {
            FelixBpfConfig result = Api(() => felix.Apply(plan, dryRun: false), name);
            if (PassThru)
            {
                WriteObject(result);
            }
        }
        catch (FelixConflictException ex)
        {
            WriteError(new ErrorRecord(ex, "FelixConfigurationConflict", ErrorCategory.ResourceBusy, name));
        }
    }

    /// <summary>
    /// ConfirmImpact High for the changes that can cut traffic: asked unless -Force, -Confirm (either
    /// way: -Confirm has asked already, -Confirm:$false says no) or $ConfirmPreference None.
    /// </summary>
    private bool ConfirmHighImpact(string query) =>
        Force || MyInvocation.BoundParameters.ContainsKey("Confirm")
        || SessionState.PSVariable.GetValue("ConfirmPreference") is ConfirmImpact.None
        || ShouldContinue(query, "Confirm a change that can interrupt traffic");

    /// <summary>The fields the user typed, as JSON values; -Clear adds nulls.</summary>
    private List<(FelixField, JsonNode?)> GivenValues()
    {
        var values = new List<(FelixField, JsonNode?)>();
        foreach (FelixField f in FelixFields.All)
        {
            if (!MyInvocation.BoundParameters.TryGetValue(f.Property, out object? given))
            {
                continue;
            }

            values.Add((f, ToJson(f, given is PSObject p ? p.BaseObject : given)));
        }

        foreach (string c in Clear ?? Array.Empty<string>())
        {
            FelixField field = FelixFields.Find(c) ?? throw new PSArgumentException($"-Clear {c}: there is no eBPF-related FelixConfiguration field of that name.");
            values.Add((field, null));
        }

        return values;
    }

    private static JsonNode? ToJson(FelixField f, object? v) => v switch
    {
        null => null,
        bool b => JsonValue.Create(b),
        long l => JsonValue.Create(l),
        string s when f.Kind == FelixValueKind.IntOrText && long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) => JsonValue.Create(n),
        string s => JsonValue.Create(s),
        string[] a => new JsonArray(a.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
        Hashtable h => new JsonObject(h.Cast<DictionaryEntry>().Select(e => KeyValuePair.Create(e.Key.ToString() ?? string.Empty, (JsonNode?)JsonValue.Create(e.Value?.ToString())))),
        _ => JsonValue.Create(v.ToString()),
    };

    /// <summary>
    /// bpfEnabled on an operator install belongs to the Installation: without -UpdateInstallation the
    /// field is left out (with the exact command to run); with it, the Installation is changed instead.
    /// Returns false when nothing is left to do.
    /// </summary>
    private bool HandleBpfEnabled(FelixConfigClient felix, List<(FelixField Field, JsonNode? Value)> values)
    {
        int i = values.FindIndex(v => v.Field.Json == "bpfEnabled");
        if (i < 0)
        {
            return true;
        }

        var installations = new ResourceRef("operator.tigera.io", "v1", "installations");
        JsonObject? installation = Api(() => Cluster.ServedGroupVersions(CancelToken).Contains("operator.tigera.io/v1") ? Cluster.GetResource(installations, "default", CancelToken) : null);
        if (installation is null)
        {
            return true;
        }

        bool on = values[i].Value?.GetValue<bool>() ?? false;
        string dataplane = on ? "BPF" : "Iptables";
        values.RemoveAt(i);
        if (!UpdateInstallation)
        {
            WriteError(new ErrorRecord(new InvalidOperationException(
                    $"This cluster's Calico is installed by the operator, which owns bpfEnabled: it sets it from the Installation and refuses to run on a hand-edited value. bpfEnabled was not changed. " +
                    $"Run: Set-FelixBpfConfig -BpfEnabled:${on.ToString().ToLowerInvariant()} -UpdateInstallation  (or: kubectl patch installation default --type merge -p '{{\"spec\":{{\"calicoNetwork\":{{\"linuxDataplane\":\"{dataplane}\"}}}}}}')"),
                "BpfEnabledOwnedByOperator", ErrorCategory.InvalidOperation, "bpfEnabled"));
            return values.Count > 0;
        }

        string current = installation["spec"]?["calicoNetwork"]?["linuxDataplane"]?.GetValue<string>() ?? "Iptables";
        if (current == dataplane)
        {
            WriteVerbose($"Installation default already has linuxDataplane {dataplane}.");
        }
        else if (ShouldProcess("Installation default (operator.tigera.io/v1)", $"spec.calicoNetwork.linuxDataplane: {current} -> {dataplane} (the operator rolls calico-node out again; this can interrupt traffic)")
                 && ConfirmHighImpact($"Switching the dataplane to {dataplane} restarts calico-node on every node. Apply it?"))
        {
            string patch = $"{{\"metadata\":{{\"resourceVersion\":\"{installation["metadata"]?["resourceVersion"]}\"}},\"spec\":{{\"calicoNetwork\":{{\"linuxDataplane\":\"{dataplane}\"}}}}}}";
            Api(() => Cluster.PatchResource(installations, "default", patch, false, CancelToken), "installation default");
        }

        return values.Count > 0;
    }

    /// <summary>Warnings where the change will not do what the user expects.</summary>
    private void WarnOverrides(FelixConfigClient felix, FelixChangePlan plan)
    {
        CalicoNode? anyNode = ClusterNodes.FirstOrDefault(n => n.HasCalicoNode);
        if (anyNode is not null)
        {
            Dictionary<string, (string Value, string Detail)> env = Api(() => felix.CalicoNodeEnvironment(anyNode));
            foreach (FelixFieldChange c in plan.Changes)
            {
                if (env.TryGetValue(c.Field.Environment, out var e))
                {
                    WriteWarning($"{c.Field.Json}: {e.Detail} sets it to {e.Value}, and an environment variable beats every FelixConfiguration: this change has no effect until that variable is removed.");
                }
            }
        }

        if (plan.Changes.Any(c => c.Field.Json == "bpfLogLevel" && c.New?.ToString().Equals("Debug", StringComparison.OrdinalIgnoreCase) == true))
        {
            WriteWarning("bpfLogLevel Debug makes every BPF program log every packet to the trace pipe: a significant performance cost. Turn it off when done (Set-FelixBpfConfig -Clear bpfLogLevel), or use Use-FelixBpfDebugLog, which restores it.");
        }
    }
}
