using System.Text.Json.Nodes;
using CalicoBpf.Cluster;

namespace CalicoBpf.Tests;

public class FelixFieldsTests
{
    [Theory]
    [InlineData("1s", 1000)]
    [InlineData("500ms", 500)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1.5s", 1500)]
    [InlineData("0", 0)]
    public void Go_durations_parse(string text, long milliseconds)
    {
        Assert.True(GoDuration.TryParse(text, out TimeSpan t));
        Assert.Equal(milliseconds, (long)t.TotalMilliseconds);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5x")]
    [InlineData("s1")]
    [InlineData("10")]
    public void Bad_durations_do_not(string text) => Assert.False(GoDuration.TryParse(text, out _));

    [Fact]
    public void Values_are_typed_and_absent_fields_null()
    {
        var config = FelixFields.Read((JsonObject)JsonNode.Parse("""
            {"apiVersion":"crd.projectcalico.org/v1","kind":"FelixConfiguration","metadata":{"name":"node.n1","resourceVersion":"7"},
             "spec":{"bpfEnabled":true,"bpfKubeProxyMinSyncPeriod":"2s","vxlanPort":4790,"bpfDSROptoutCIDRs":["10.0.0.0/8"],
                     "bpfLogFilters":{"eth0":"tcp port 80"},"bpfPSNATPorts":20000,"unrelated":1}}
            """)!);
        Assert.Equal(("node.n1", "Node", "n1", "7"), (config.Name, config.Scope, config.Node, config.ResourceVersion));
        Assert.True(config.BpfEnabled);
        Assert.Equal(TimeSpan.FromSeconds(2), config.BpfKubeProxyMinSyncPeriodValue);
        Assert.Equal(4790L, config.VxlanPort);
        Assert.Equal(new[] { "10.0.0.0/8" }, config.BpfDSROptoutCIDRs);
        Assert.Equal("tcp port 80", config.BpfLogFilters!["eth0"]);
        Assert.Equal("20000", config.BpfPSNATPorts);
        Assert.Null(config.BpfLogLevel);
        Assert.Equal(new[] { "bpfEnabled", "bpfLogFilters", "bpfDSROptoutCIDRs", "bpfKubeProxyMinSyncPeriod", "bpfPSNATPorts", "vxlanPort" }, config.SetFields);
    }

    [Fact]
    public void Every_field_has_a_distinct_property_and_an_environment_name()
    {
        Assert.Equal(FelixFields.All.Count, FelixFields.All.Select(f => f.Property).Distinct().Count());
        Assert.All(FelixFields.All, f => Assert.StartsWith("FELIX_", f.Environment));
        Assert.Equal("FELIX_IPINIPENABLED", FelixFields.Find("IpipEnabled")!.Environment);
        Assert.Same(FelixFields.Find("bpfLogLevel"), FelixFields.Find("BPFLOGLEVEL"));
        foreach (FelixField f in FelixFields.All)
        {
            Assert.NotNull(typeof(FelixBpfConfig).GetProperty(f.Property));
        }
    }
    [Theory]
    // felix/config/config_params.go at each tag.
    [InlineData("bpfAttachType", "v3.30.7", "TC")]
    [InlineData("bpfAttachType", "v3.31.0", "TCX")]
    [InlineData("bpfAttachType", "v3.32.1", "TCX")]
    [InlineData("bpfAttachType", "v3.34.0-0.dev", "Netkit")]
    [InlineData("bpfRedirectToPeer", "v3.28.5", null)]
    [InlineData("bpfRedirectToPeer", "v3.31.7", "L2Only")]
    [InlineData("bpfRedirectToPeer", "v3.32.0", "Enabled")]
    [InlineData("nftablesMode", "v3.30.7", "Disabled")]
    [InlineData("nftablesMode", "v3.32.0", "Auto")]
    [InlineData("programClusterRoutes", "v3.32.1", "Disabled")]
    [InlineData("programClusterRoutes", "v3.33.0", "EnabledIPIPOnly")]
    [InlineData("bpfHostConntrackBypass", "v3.29.7", "true")]
    [InlineData("bpfHostConntrackBypass", "v3.30.0", "false")]
    [InlineData("bpfDataIfacePattern", "v3.26.5", "^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan).*|tunl0$|vxlan.calico$|wireguard.cali$|wg-v6.cali$)")]
    [InlineData("bpfDataIfacePattern", "v3.28.0", "^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan).*|tunl0$|vxlan.calico$|vxlan-v6.calico$|wireguard.cali$|wg-v6.cali$)")]
    [InlineData("bpfDataIfacePattern", "v3.30.0", "^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan|bond).*)")]
    [InlineData("bpfEnforceRPF", "v3.25.2", "Strict")]
    [InlineData("bpfEnforceRPF", "v3.26.0", "Loose")]
    [InlineData("vxlanPort", "v3.24.0", "4789")]
    public void Defaults_are_the_releases_own(string field, string release, string? expected) =>
        Assert.Equal(expected, FelixFields.Find(field)!.DefaultIn(CalicoRelease.Parse(release)));
}
