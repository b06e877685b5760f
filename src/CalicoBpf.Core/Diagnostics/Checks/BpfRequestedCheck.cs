using CalicoBpf.Cluster;

namespace CalicoBpf.Diagnostics;

/// <summary>1. eBPF requested: FelixConfiguration bpfEnabled, FELIX_BPFENABLED of calico-node and the Installation's linuxDataplane agree.</summary>
public sealed class BpfRequestedCheck : Check
{
    public override string Id => "bpf-requested";

    public override string Title => "eBPF mode is requested consistently";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        var says = new List<(string Where, bool On)>();
        if (context.DefaultConfig?.BpfEnabled is bool b)
        {
            says.Add(($"FelixConfiguration default bpfEnabled: {b.ToString().ToLowerInvariant()}", b));
        }

        if (context.CalicoEnvironment.TryGetValue("FELIX_BPFENABLED", out var env))
        {
            says.Add(($"{env.Detail}: {env.Value}", IsTrue(env.Value)));
        }

        string? dataplane = context.Installation?["spec"]?["calicoNetwork"]?["linuxDataplane"]?.GetValue<string>();
        if (context.Installation is not null)
        {
            dataplane ??= "Iptables";
            says.Add(($"Installation default linuxDataplane: {dataplane}", dataplane == "BPF"));
        }

        string evidence = string.Join("; ", says.Select(s => s.Where));
        string fix = context.Installation is not null
            ? "Set-FelixBpfConfig -BpfEnabled:$true -UpdateInstallation"
            : "Set-FelixBpfConfig -BpfEnabled:$true";
        if (says.Count == 0 || says.All(s => !s.On))
        {
            yield return Result(CheckStatus.Fail, "eBPF mode is not requested anywhere: Felix runs the iptables or nftables dataplane.", evidence: evidence.Length > 0 ? evidence : "bpfEnabled is not set (default false)", remediation: fix);
        }
        else if (says.Any(s => !s.On))
        {
            // The environment beats FelixConfiguration; the operator writes bpfEnabled from linuxDataplane.
            yield return Result(CheckStatus.Fail, "The places that switch eBPF mode disagree: " + string.Join(" but ", says.GroupBy(s => s.On).Select(g => string.Join(", ", g.Select(s => s.Where)))) + ".",
                evidence: evidence, remediation: fix);
        }
        else
        {
            yield return Result(CheckStatus.Pass, "eBPF mode is requested, and every place that switches it agrees.", evidence: evidence);
        }
    }
}
