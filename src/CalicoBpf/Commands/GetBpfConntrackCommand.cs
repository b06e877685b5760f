using System.Management.Automation;
using CalicoBpf.Maps;

namespace CalicoBpf.Commands;

/// <summary>Decodes Calico's conntrack table into <see cref="ConntrackEntry"/> objects, filtering while it reads.</summary>
[Cmdlet(VerbsCommon.Get, "BpfConntrack")]
[OutputType(typeof(ConntrackEntry))]
public sealed class GetBpfConntrackCommand : BpfCmdletBase
{
    /// <summary>Read the IPv6 table (cali_v6_ct*) instead of the IPv4 one.</summary>
    [Parameter]
    public SwitchParameter IPv6 { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public IpProtocol[]? Protocol { get; set; }

    /// <summary>Addresses or CIDRs; an entry matches when its source, destination or service address is inside one.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[]? Address { get; set; }

    /// <summary>An entry matches when its source, destination or service port is one of these.</summary>
    [Parameter]
    [ValidateRange(0, 65535)]
    public int[]? Port { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public ConntrackType[]? Type { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public TcpState[]? State { get; set; }

    /// <summary>Only entries whose last packet is older than this.</summary>
    [Parameter]
    public TimeSpan OlderThan { get; set; }

    protected override void ProcessRecord()
    {
        List<AddressPrefix>? addresses = ParseAddresses();
        if (addresses is null && Address is not null)
        {
            return;
        }

        var query = new ConntrackQuery
        {
            IPv6 = IPv6.IsPresent,
            Protocols = Protocol,
            Addresses = addresses,
            Ports = Port is null ? null : new HashSet<int>(Port),
            Types = Type,
            States = State,
            OlderThan = MyInvocation.BoundParameters.ContainsKey(nameof(OlderThan)) ? OlderThan : null,
        };
        Run(() =>
        {
            foreach (ConntrackEntry entry in ConntrackReader.Read(OpenLocalNode(), query, Reporter, CancelToken))
            {
                WriteObject(entry);
            }
        }, PinPath);
    }

    private List<AddressPrefix>? ParseAddresses()
    {
        if (Address is null)
        {
            return null;
        }

        var result = new List<AddressPrefix>();
        foreach (string text in Address)
        {
            AddressPrefix prefix;
            try
            {
                prefix = AddressPrefix.Parse(text);
            }
            catch (FormatException ex)
            {
                ThrowTerminatingError(new ErrorRecord(ex, "InvalidAddress", ErrorCategory.InvalidArgument, text));
                return null;
            }

            if (prefix.IsIPv6 != IPv6.IsPresent)
            {
                string hint = prefix.IsIPv6 ? "add -IPv6 to read the IPv6 table" : "drop -IPv6 to read the IPv4 table";
                ThrowTerminatingError(new ErrorRecord(
                    new ArgumentException($"-Address {text} is {(prefix.IsIPv6 ? "IPv6" : "IPv4")} but the {(IPv6 ? "IPv6" : "IPv4")} table is being read: {hint}."),
                    "AddressFamilyMismatch", ErrorCategory.InvalidArgument, text));
            }

            result.Add(prefix);
        }

        return result;
    }
}
