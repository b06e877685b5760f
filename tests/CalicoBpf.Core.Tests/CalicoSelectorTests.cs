using CalicoBpf.Cluster;

namespace CalicoBpf.Tests;

/// <summary>Calico's selector language as a FelixConfiguration's nodeSelector uses it, matched against node labels.</summary>
public class CalicoSelectorTests
{
    private static readonly Dictionary<string, string> Edge = new() { ["pool"] = "edge", ["zone"] = "eu-west-1a", ["kubernetes.io/os"] = "linux" };

    [Theory]
    [InlineData("", true)]
    [InlineData("all()", true)]
    [InlineData("global()", true)]
    [InlineData("has(pool)", true)]
    [InlineData("!has(pool)", false)]
    [InlineData("has(rack)", false)]
    [InlineData("pool == 'edge'", true)]
    [InlineData("pool == \"edge\"", true)]
    [InlineData("pool == 'core'", false)]
    [InlineData("pool != 'core'", true)]
    [InlineData("rack != 'r1'", true)] // an absent label is "not equal"
    [InlineData("rack == 'r1'", false)]
    [InlineData("pool in {'core', 'edge'}", true)]
    [InlineData("pool in {}", false)]
    [InlineData("pool not in {'core'}", true)]
    [InlineData("rack not in {'r1'}", true)]
    [InlineData("rack in {'r1'}", false)]
    [InlineData("zone starts with 'eu-'", true)]
    [InlineData("zone ends with '1b'", false)]
    [InlineData("zone contains 'west'", true)]
    [InlineData("kubernetes.io/os == 'linux'", true)]
    [InlineData("pool == 'edge' && zone == 'eu-west-1a'", true)]
    [InlineData("pool == 'core' || zone == 'eu-west-1a'", true)]
    [InlineData("pool == 'core' || pool == 'dmz' && has(zone)", false)] // && binds tighter than ||
    [InlineData("(pool == 'core' || pool == 'edge') && has(zone)", true)]
    [InlineData("!(pool == 'edge')", false)]
    [InlineData("  pool=='edge'&&!has(rack)  ", true)]
    public void Matches_as_calico_does(string selector, bool expected) =>
        Assert.Equal(expected, CalicoSelector.Parse(selector).Matches(Edge));

    [Theory]
    [InlineData("pool = 'x'", "position 6: ==, !=, in, not in, contains, starts with or ends with (after the label) was expected, not \"= 'x'\"")]
    [InlineData("pool == edge", "position 9: a quoted value was expected")]
    [InlineData("pool == 'edge", "a closing ' was expected")]
    [InlineData("has(pool", "position 9: ) was expected before its end")]
    [InlineData("pool in {'a' 'b'}", "} was expected")]
    [InlineData("pool == 'a' &&", "a label, has(...), all(), ! or ( was expected before its end")]
    [InlineData("pool == 'a' pool == 'b'", "the end of the selector or && or || was expected")]
    [InlineData("zone starts 'eu'", "with was expected")]
    [InlineData("pool not 'x'", "in (after not) was expected")]
    public void Refuses_what_calico_refuses_naming_where(string selector, string message)
    {
        var ex = Assert.Throws<FormatException>(() => CalicoSelector.Parse(selector));
        Assert.Contains(message, ex.Message);
        Assert.StartsWith($"The selector \"{selector}\" is not valid at position ", ex.Message);
    }
}
