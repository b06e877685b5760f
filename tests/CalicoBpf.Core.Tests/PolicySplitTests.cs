using System.Text.Json;
using CalicoBpf.Flow;

namespace CalicoBpf.Tests;

/// <summary>
/// A policy program Felix split in two (pol_prog_builder.go:1142-1175 at v3.30.7): after "Splitting
/// program after N jumps" each dangling jump target gets a landing pad before the next program
/// starts. Its labels (to_or_from_host, allowed_by_host_policy among them) only hand over, so a
/// pre-DNAT tier that begins in the next program is still pre-DNAT (review 1, finding 12).
/// </summary>
public class PolicySplitTests
{
    private static string I(string? label = null, string? comment = null, string inst = "183,0,0,0,0,0,0,0") =>
        "{\"inst\":[" + inst + "],\"labels\":[" + (label is null ? string.Empty : JsonSerializer.Serialize(label)) + "],\"comments\":[" +
        (comment is null ? string.Empty : JsonSerializer.Serialize(comment)) + "]}";

    [Fact]
    public void A_split_programs_landing_pads_start_no_stage()
    {
        const string rule = "Start of rule \"action:\\\"allow\\\" dst_ports:{first:22 last:22}\"";
        string[] insns =
        {
            I(comment: "Start of tier pre1"), I(comment: "Start of policy \"default.a\""), I(comment: rule), I(comment: "End of rule"), I(comment: "End of tier pre1: pass"),
            I(comment: "Splitting program after 8000 jumps"), I(label: "to_or_from_host"), I(label: "allowed_by_host_policy"),
            I(comment: "##### Start of program 1 #####"),
            I(comment: "Start of tier pre2"), I(comment: "Start of policy \"default.b\""), I(comment: rule), I(comment: "End of rule"), I(comment: "End of tier pre2: pass"),
            // The to-or-from-host jump: and r2, FlagSrcIsHost|FlagDestIsHost (0x0c).
            I(inst: "87,2,0,0,12,0,0,0"),
            I(label: "to_or_from_host", comment: "Start of tier normal"), I(comment: "Start of policy \"default.c\""), I(comment: rule), I(comment: "End of rule"), I(comment: "End of tier normal: deny"),
            I(label: "allowed_by_host_policy"),
        };
        string doc = "{\"policyInfo\":[" + string.Join(",", insns) + "],\"error\":\"\"}";
        PolicyProgram p = PolicyDebugProgram.Read(doc, forHostInterface: true, ipv6: false).Program;
        Assert.Equal(new[] { "pre1", "pre2" }, p.HostPreDnatTiers.Select(t => t.Name));
        Assert.Equal(new[] { "normal" }, p.HostNormalTiers.Select(t => t.Name));
        Assert.Empty(p.Tiers);
    }
}
