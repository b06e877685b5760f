namespace CalicoBpf.Commands;

/// <summary>Decodes Calico's conntrack table into <see cref="ConntrackEntry"/> objects, filtering while it reads.</summary>
[Cmdlet(VerbsCommon.Get, "BpfConntrack", HelpUri = HelpUris.Base + "Get-BpfConntrack.md")]
[OutputType(typeof(ConntrackEntry))]
public sealed class GetBpfConntrackCommand : ConntrackCmdletBase
{
    /// <summary>Only entries whose last packet is older than this.</summary>
    [Parameter]
    [DurationArgument]
    public TimeSpan OlderThan { get; set; }

    protected override void ProcessRecord()
    {
        if (!TryBuildQuery(OlderThan, out ConntrackQuery query, out bool resolved))
        {
            return;
        }

        if (resolved)
        {
            ForEachNode(node => ConntrackReader.Read(node, query, Reporter, CancelToken).Select(Resolved));
            return;
        }

        ForEachNode(node => ConntrackReader.Read(node, query, Reporter, CancelToken));
    }
}
