namespace CalicoBpf.Commands;

/// <summary>
/// Removes Calico's connect-time load balancer (calico-bpf connect-time clean): empties and unpins
/// the cali_ctlb_* program arrays, detaches and unpins the links in /sys/fs/bpf/ctlb.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "BpfConnectTimeProgram", SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpUris.Base + "Remove-BpfConnectTimeProgram.md")]
[OutputType(typeof(void))]
public sealed class RemoveBpfConnectTimeProgramCommand : MapCmdletBase
{
    /// <summary>Changes are made on live nodes: no -Bundle (a bundle is read-only).</summary>
    public override string? Bundle { get => null; set => throw new NotSupportedException(); }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string LinkPath { get; set; } = ConnectTime.DefaultLinkDirectory;

    protected override void ProcessRecord()
    {
        string links = IsLocal ? GetUnresolvedProviderPathFromPSPath(LinkPath) : LinkPath;
        ForEachNodeInTurn(node =>
        {
            string on = IsLocal ? string.Empty : " on " + node.Node;
            (IReadOnlyList<string> arrays, IReadOnlyList<string> linkPins) = ConnectTime.Plan(node, links);
            if (arrays.Count == 0 && linkPins.Count == 0)
            {
                // Said, not whispered: a cleanup that finds nothing may be looking in the wrong place.
                string why = IsLocal && ConnectTime.Cgroup2Mount() is null
                    ? " This machine has no cgroup v2 hierarchy mounted, which Calico attaches it to: it cannot be in use here."
                    : string.Empty;
                WriteWarning($"No connect-time load balancer pins were found{on} (program arrays in {node.PinDirectory}, links in {links}): nothing to remove.{why}");
            }

            foreach (string array in arrays)
            {
                if (ShouldProcess(array + on, "Empty and unpin the connect-time program array"))
                {
                    node.RemoveConnectTimeProgramArray(array);
                }
            }

            foreach (string link in linkPins)
            {
                if (ShouldProcess(link + on, "Detach the connect-time load balancer link from its cgroup and unpin it (services then resolve per packet, not per connection)"))
                {
                    node.RemoveConnectTimeLink(link);
                }
            }
        });
    }
}
