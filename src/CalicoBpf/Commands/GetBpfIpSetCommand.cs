namespace CalicoBpf.Commands;

/// <summary>Members of Calico's IP sets (calico-bpf ipsets dump).</summary>
[Cmdlet(VerbsCommon.Get, "BpfIpSet", HelpUri = HelpUris.Base + "Get-BpfIpSet.md")]
[OutputType(typeof(IpSetMember))]
public sealed class GetBpfIpSetCommand : MapCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    /// <summary>Set ids as calico-bpf prints them (0x...) or decimal.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    [Alias("SetIdText")]
    public string[]? SetId { get; set; }

    protected override void ProcessRecord()
    {
        var ids = new HashSet<ulong>();
        foreach (string text in SetId ?? Array.Empty<string>())
        {
            try
            {
                ids.Add(IpSetMap.ParseSetId(text));
            }
            catch (FormatException ex)
            {
                ThrowTerminatingError(new ErrorRecord(ex, "InvalidSetId", ErrorCategory.InvalidArgument, text));
            }
        }

        ReadEach(node => IpSetMap.Read(node, IPv6, ids, Reporter, CancelToken), SetId, "IpSetNotFound",
            s => $"No IP set {s} is in the dataplane. Run Get-BpfIpSet without -SetId to list the sets.");
    }
}
