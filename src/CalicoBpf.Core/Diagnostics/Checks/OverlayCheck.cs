using CalicoBpf.Cluster;

namespace CalicoBpf.Diagnostics;

/// <summary>9. Overlay choice: IPIP pools perform poorly in eBPF mode; overlay flags without overlay pools disable optimisations.</summary>
public sealed class OverlayCheck : Check
{
    public override string Id => "overlay";

    public override string Title => "The overlay suits eBPF mode";

    public override IEnumerable<CheckResult> Run(CheckContext context)
    {
        static string Mode(JsonObject pool, string field) => pool["spec"]?[field]?.GetValue<string>() is { Length: > 0 } m ? m : "Never";
        var pools = context.IpPools.Select(p => (Name: p["metadata"]?["name"]?.GetValue<string>() ?? "?", Cidr: p["spec"]?["cidr"]?.GetValue<string>() ?? "?", Ipip: Mode(p, "ipipMode"), Vxlan: Mode(p, "vxlanMode"))).ToList();
        string evidence = string.Join("; ", pools.Select(p => $"{p.Name} {p.Cidr} ipipMode {p.Ipip} vxlanMode {p.Vxlan}"));
        var ipip = pools.Where(p => p.Ipip != "Never").ToList();
        bool found = false;
        if (ipip.Count > 0)
        {
            found = true;
            yield return Result(CheckStatus.Warning, $"IP pools with IPIP ({string.Join(", ", ipip.Select(p => p.Name))}): IPIP performs poorly in eBPF mode; VXLAN is recommended.",
                evidence: evidence, remediation: $"kubectl patch ippools.{context.Felix.Resource.Group} {ipip[0].Name} --type merge -p '{{\"spec\":{{\"ipipMode\":\"Never\",\"vxlanMode\":\"{ipip[0].Ipip}\"}}}}'");
        }

        FelixBpfConfig? d = context.DefaultConfig;
        if (pools.All(p => p.Ipip == "Never" && p.Vxlan == "Never") && (d?.IpipEnabled == true || d?.VxlanEnabled == true))
        {
            found = true;
            string flag = d!.IpipEnabled == true ? "ipipEnabled" : "vxlanEnabled";
            yield return Result(CheckStatus.Warning, $"No IP pool uses an overlay but {flag} is true: the overlay device is created for nothing, and it turns off eBPF optimisations.",
                evidence: $"{evidence}; {flag} true (FelixConfiguration default)", remediation: $"Set-FelixBpfConfig -Clear {flag}");
        }

        if (!found)
        {
            yield return Result(CheckStatus.Pass, "The IP pools' overlay suits eBPF mode.", evidence: evidence);
        }
    }
}
