namespace CalicoBpf.Commands;

/// <summary>Programs attached to the cgroup Calico's connect-time load balancer uses.</summary>
[Cmdlet(VerbsCommon.Get, "BpfConnectTimeProgram", HelpUri = HelpUris.Base + "Get-BpfConnectTimeProgram.md")]
[OutputType(typeof(ConnectTimeProgram))]
public sealed class GetBpfConnectTimeProgramCommand : NodeCmdletBase
{
    /// <summary>The cgroup v2 directory; default CALICO_CGROUP_PATH, /run/calico/cgroup, or the cgroup2 mount (of the node read).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? CgroupPath { get; set; }

    /// <summary>Where Calico pins the links (default /sys/fs/bpf/ctlb).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string LinkPath { get; set; } = ConnectTime.DefaultLinkDirectory;

    /// <summary>Also list programs that are not Calico's.</summary>
    [Parameter]
    public SwitchParameter All { get; set; }

    protected override void ProcessRecord()
    {
        // Paths of another node are that node's: only local ones go through the provider (relative paths, ~).
        string? cgroup = CgroupPath is null ? null : IsLocal ? GetUnresolvedProviderPathFromPSPath(CgroupPath) : CgroupPath;
        string links = IsLocal ? GetUnresolvedProviderPathFromPSPath(LinkPath) : LinkPath;
        ForEachNode(node => ConnectTime.Programs(node, cgroup, links, !All));
    }
}
