using System.Text.Json.Nodes;
using CalicoBpf.Cluster;
using Xunit;

namespace CalicoBpf.Core.Tests;

/// <summary>Felix's rules for the fields whose CRD type says only "integer" or "string".</summary>
public class FelixRulesTests
{
    [Fact]
    public void Every_rule_is_of_a_catalogued_field_and_Felix_s_own_defaults_pass_it()
    {
        foreach ((string json, FelixRule rule) in FelixRules.ByField)
        {
            FelixField field = FelixFields.Find(json) ?? throw new Xunit.Sdk.XunitException($"{json} has a rule but is not in FelixFields.All");
            Assert.Equal(json, field.Json);
            Assert.False(string.IsNullOrWhiteSpace(rule.Source), json);
            if (field.Default is { } text)
            {
                // Defaults are from config_params.go: a rule that refuses one is wrong.
                JsonNode value = field.Kind switch
                {
                    FelixValueKind.Integer => JsonValue.Create(long.Parse(text))!,
                    FelixValueKind.TextList => new JsonArray(text.Split(',').Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
                    _ => JsonValue.Create(text)!,
                };
                Assert.Null(FelixRules.Check(field, value));
            }
        }
    }

    [Theory]
    [InlineData("vxlanPort", "99999", "vxlanPort: 99999 is out of range; give 1 to 65535 (kernel IFLA_VXLAN_PORT is 16 bits")]
    [InlineData("vxlanPort", "0", "give 1 to 65535")]
    [InlineData("bpfMapSizeConntrack", "-5", "bpfMapSizeConntrack: -5 is out of range; give 1 to 4294967295")]
    [InlineData("bpfMapSizeConntrack", "0", "give 1 to 4294967295")]
    [InlineData("bpfMapSizeConntrack", "4294967296", "out of range")]
    [InlineData("bpfKubeProxyHealthzPort", "65536", "give 0 to 65535")]
    [InlineData("bpfExtToServiceConnmark", "-1", "give 0 to 4294967295")]
    [InlineData("bpfMaglevMaxEndpointsPerService", "0", "give 1 to 3000")]
    [InlineData("vxlanVNI", "16777216", "give 0 to 16777215")]
    [InlineData("vxlanMTU", "70000", "give 0 to 65535")]
    [InlineData("bpfPSNATPorts", "\"30000:20000\"", "starts above its end")]
    [InlineData("bpfPSNATPorts", "\"20000-29999\"", "is not a port range")]
    [InlineData("bpfPSNATPorts", "\"http\"", "is not a port range")]
    [InlineData("bpfPSNATPorts", "70000", "is not a port range")]
    [InlineData("bpfDataIfacePattern", "\"^(?!cali).*\"", "uses (?!, look-around, which Go's regular expressions do not have")]
    [InlineData("bpfDataIfacePattern", "\"(eth)\\\\1\"", "uses \\1, a back-reference")]
    [InlineData("bpfDataIfacePattern", "\"eth0\\\\Z\"", "uses \\Z, which Go's regular expressions do not have")]
    [InlineData("bpfDataIfacePattern", "\"(?#note)eth\"", "uses (?#")]
    [InlineData("bpfDataIfacePattern", "\"(?x)eth\"", "uses the flags (?x; Go's regular expressions have i, m, s and U")]
    [InlineData("bpfDataIfacePattern", "\"a{1001}\"", "repeats {1001}; Go's regular expressions repeat at most 1000 times")]
    [InlineData("bpfL3IfacePattern", "\"^(wg\"", "is not a regular expression")]
    [InlineData("bpfDSROptoutCIDRs", "[\"10.0.0.0/8\", \"10\"]", "'10' is not an address or a CIDR")]
    [InlineData("bpfExcludeCIDRsFromNAT", "[\"fd00::/129\", \"1.2.3.4/33\"]", "'fd00::/129', '1.2.3.4/33' are not addresses or CIDRs")]
    [InlineData("bpfForceTrackPacketsFromIfaces", "[\"docker+\", \"eth 0\"]", "'eth 0': each must be an interface name")]
    [InlineData("bpfLogFilters", "{\"eth0\": \"tcp\", \"sixteen-letters!\": \"udp\"}", "key 'sixteen-letters!'")]
    [InlineData("bpfCTLBLogFilter", "\"some\"", "give all, or an empty string")]
    [InlineData("interfacePrefix", "\"cali,tap*\"", "is not interface-name prefixes")]
    public void Refuses_with_what_to_give(string json, string value, string says)
    {
        string? problem = FelixRules.Check(FelixFields.Find(json)!, JsonNode.Parse(value));
        Assert.NotNull(problem);
        Assert.Contains(says, problem);
    }

    [Theory]
    [InlineData("vxlanPort", "8472")]
    [InlineData("vxlanVNI", "0")]
    [InlineData("bpfMapSizeConntrack", "4294967295")]
    [InlineData("bpfMapSizePerCpuConntrack", "0")]
    [InlineData("bpfKubeProxyHealthzPort", "0")]
    [InlineData("bpfPSNATPorts", "20000")]
    [InlineData("bpfPSNATPorts", "\"25000\"")]
    [InlineData("bpfPSNATPorts", "\"0:65535\"")]
    [InlineData("bpfDataIfacePattern", "\"^((en|wl|ww|sl|ib)[Popsx].*|(eth|wlan|wwan|bond).*)\"")]
    [InlineData("bpfDisableGROForIfaces", "\"(?i)^eth[0-9]+$\"")]
    [InlineData("bpfDataIfacePattern", "\"(?P<nic>eth|ens)[0-9]+\"")]
    [InlineData("bpfDataIfacePattern", "\"\\\\Qeth0.100\\\\E\"")]
    [InlineData("bpfDataIfacePattern", "\"(?U)eth.+\"")]
    [InlineData("bpfDataIfacePattern", "\"(?iU:ETH)\\\\d\"")]
    [InlineData("bpfDataIfacePattern", "\"\\\\x{65}th0\"")]
    [InlineData("bpfDataIfacePattern", "\"eth\\\\\\\\1\"")]
    [InlineData("bpfDataIfacePattern", "\"[[:alpha:]]+[(){}]\"")]
    [InlineData("bpfDataIfacePattern", "\"a{1000}\"")]
    [InlineData("bpfDSROptoutCIDRs", "[\"10.0.0.0/8\", \"192.168.1.5\", \"fd00::/64\", \"::1\"]")]
    [InlineData("bpfForceTrackPacketsFromIfaces", "[\"docker+\", \"br-1234:x.y\"]")]
    [InlineData("bpfLogFilters", "{\"all\": \"tcp\", \"weps\": \"udp\", \"eth0.100\": \"\"}")]
    [InlineData("bpfCTLBLogFilter", "\"ALL\"")]
    [InlineData("bpfCTLBLogFilter", "\"\"")]
    [InlineData("interfacePrefix", "\"cali,tap\"")]
    [InlineData("bpfLogLevel", "\"anything: no rule, the CRD decides\"")]
    public void Takes_what_Felix_takes(string json, string value) =>
        Assert.Null(FelixRules.Check(FelixFields.Find(json)!, JsonNode.Parse(value)));
}
