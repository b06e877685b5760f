using System.Net;

namespace CalicoBpf.Commands;

/// <summary>Calico's routing map (calico-bpf routes dump); -Address finds the route the dataplane uses.</summary>
[Cmdlet(VerbsCommon.Get, "BpfRoute", HelpUri = HelpUris.Base + "Get-BpfRoute.md")]
[OutputType(typeof(Route))]
public sealed class GetBpfRouteCommand : MapCmdletBase
{
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    /// <summary>
    /// An address: only the route the dataplane uses for it (longest-prefix match). A CIDR: every route
    /// within it, as Get-BpfConntrack -Address takes CIDRs.
    /// </summary>
    [Parameter(Position = 0)]
    [ValidateNotNullOrEmpty]
    public string? Address { get; set; }

    protected override void ProcessRecord()
    {
        AddressPrefix? given = null;
        if (Address is not null)
        {
            try
            {
                given = AddressPrefix.Parse(Address);
            }
            catch (FormatException ex)
            {
                ThrowTerminatingError(new ErrorRecord(new ArgumentException($"-Address {ex.Message}", ex), "InvalidAddress", ErrorCategory.InvalidArgument, Address));
            }
        }

        bool ipv6 = IPv6 || given?.IsIPv6 == true;
        bool lookup = given is not null && !Address!.Contains('/');
        IPAddress? address = lookup ? given!.Address : null;
        AddressPrefix? within = lookup ? null : given;
        ReadEach(node => RouteMap.Read(node, ipv6, address, Reporter, CancelToken, within),
            Address is null ? null : new[] { Address },
            "NoRoute", a => lookup
                ? $"No Calico route covers {a}: the dataplane has no route for it (packets to it are dropped as unknown route, or go to the host stack)."
                : $"No Calico route lies within {a}. Give an address to see the route that covers it.");
    }
}
