using System.Management.Automation;
using System.Net;
using CalicoBpf.Maps;

namespace CalicoBpf.Commands;

/// <summary>Calico's routing map (calico-bpf routes dump); -Address finds the route the dataplane uses.</summary>
[Cmdlet(VerbsCommon.Get, "BpfRoute")]
[OutputType(typeof(BpfRoute))]
public sealed class GetBpfRouteCommand : RemoteCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    /// <summary>Shows only the longest-prefix match for this address.</summary>
    [Parameter(Position = 0)]
    [ValidateNotNull]
    public IPAddress? Address { get; set; }

    protected override void ProcessRecord()
    {
        bool ipv6 = IPv6 || (Address is not null && ConntrackText.IsIPv6(Address));
        ReadEach(node => RouteMap.Read(node, ipv6, Address, Reporter, CancelToken), Address is null ? null : new[] { Address.ToString() },
            "NoRoute", a => $"No Calico route covers {a}: the dataplane has no route for it (packets to it are dropped as unknown route, or go to the host stack).");
    }
}

/// <summary>Members of Calico's IP sets (calico-bpf ipsets dump).</summary>
[Cmdlet(VerbsCommon.Get, "BpfIpSet")]
[OutputType(typeof(BpfIpSetMember))]
public sealed class GetBpfIpSetCommand : RemoteCmdletBase
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

/// <summary>Calico's tunnel neighbour table (calico-bpf arp dump).</summary>
[Cmdlet(VerbsCommon.Get, "BpfArp")]
[OutputType(typeof(ArpEntry))]
public sealed class GetBpfArpCommand : RemoteCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    protected override void ProcessRecord() => ForEachNode(node => ArpMap.Read(node, IPv6, Reporter, CancelToken));
}

/// <summary>Felix's interface state: which interfaces it manages and the programs it attached (calico-bpf ifstate dump), with the kernel's attachments (TC, TCX, Netkit).</summary>
[Cmdlet(VerbsCommon.Get, "BpfInterface")]
[OutputType(typeof(BpfInterfaceState))]
public sealed class GetBpfInterfaceCommand : RemoteCmdletBase
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    [Alias("Interface")]
    public string[]? Name { get; set; }

    protected override void ProcessRecord()
    {
        Func<string, bool>? filter = WildcardFilter(Name);
        ReadEach(node => InterfaceStateMap.Read(node, Reporter, CancelToken, withAttachments: true).Where(s => filter is null || filter(s.Name)), Name,
            "InterfaceNotFound", n => $"Felix manages no interface named {n}. Run Get-BpfInterface without -Name to list them.");
    }
}
