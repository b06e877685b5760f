using System.Net;

namespace CalicoBpf.Commands;

/// <summary>Calico's routing map (calico-bpf routes dump); -Address finds the route the dataplane uses.</summary>
[Cmdlet(VerbsCommon.Get, "BpfRoute", HelpUri = HelpUris.Base + "Get-BpfRoute.md")]
[OutputType(typeof(Route))]
public sealed class GetBpfRouteCommand : MapCmdletBase
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
