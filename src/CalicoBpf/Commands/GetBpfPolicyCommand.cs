using System.Management.Automation;
using System.Text.RegularExpressions;
using CalicoBpf.Maps;

namespace CalicoBpf.Commands;

/// <summary>The policy rules attached to interfaces, with per-rule hit counts (calico-bpf policy dump).</summary>
[Cmdlet(VerbsCommon.Get, "BpfPolicy")]
[OutputType(typeof(BpfPolicyRule))]
public sealed class GetBpfPolicyCommand : BpfCmdletBase
{
    /// <summary>Interface names, wildcards allowed; without it, every interface Felix wrote policy debug info for.</summary>
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
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

    protected override void ProcessRecord() => Run(() =>
    {
        var node = OpenLocalNode();
        string dir = GetUnresolvedProviderPathFromPSPath(PolicyDebugPath);
        PolicyHook[] hooks = Direction ?? new[] { PolicyHook.Ingress, PolicyHook.Egress, PolicyHook.Xdp };
        foreach (string iface in Interfaces(dir))
        {
            foreach (BpfPolicyRule rule in PolicyDebug.Read(node, dir, iface, hooks, IPv6, Reporter, CancelToken))
            {
                WriteObject(rule);
            }
        }
    }, PolicyDebugPath);

    private IEnumerable<string> Interfaces(string dir)
    {
        bool literal = Interface is { Length: > 0 } && !Interface.Any(WildcardPattern.ContainsWildcardCharacters);
        if (literal || !Directory.Exists(dir))
        {
            return Interface ?? new[] { "*" };
        }

        // Interfaces are the <iface> part of <iface>_<hook>_v<4|6>.json.
        var names = Directory.EnumerateFiles(dir, "*.json")
            .Select(f => Regex.Match(Path.GetFileName(f), @"^(?<i>.+)_(ingress|egress|xdp)_v[46]\.json$"))
            .Where(m => m.Success)
            .Select(m => m.Groups["i"].Value)
            .Distinct()
            .OrderBy(n => n, StringComparer.Ordinal);
        Func<string, bool>? filter = WildcardFilter(Interface);
        return names.Where(n => filter is null || filter(n)).ToList();
    }
}
