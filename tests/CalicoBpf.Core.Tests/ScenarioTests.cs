using CalicoBpf.Isolation;

namespace CalicoBpf.Tests;

public class ScenarioTests
{
    [Fact]
    public void Scenario_yaml_is_read_through_the_isolated_adapter()
    {
        NodeScenario s = NodeScenario.Parse("""
            node: n1
            conntrackVersion: 3
            conntrack:
              tcp: 5
              services: 2
            interfaces:
              - name: eth0
                ingress: { TotalPackets: 10, DroppedByPolicy: 2 }
            """);
        Assert.Equal("n1", s.Node);
        Assert.Equal(3, s.ConntrackMapVersion);
        Assert.Equal(5, s.Conntrack.Tcp);
        Assert.Equal(2UL, s.Interfaces[0].Ingress!["DroppedByPolicy"]);
        Assert.Equal(5 + (2 * 2), s.GenerateConntrack(10_000_000_000_000).Count());
        Assert.Equal("CalicoBpf", System.Runtime.Loader.AssemblyLoadContext.GetLoadContext(DependencyLoadContext.Yaml.GetType().Assembly)!.Name);
    }

    [Fact]
    public void Bad_yaml_names_line_and_column()
    {
        var ex = Assert.Throws<FormatException>(() => NodeScenario.Parse("node: n1\nconntrack:\n  tcp: lots\n"));
        Assert.Contains("Line 3", ex.Message);
        Assert.StartsWith("The node scenario is not valid.", ex.Message);
    }

    [Fact]
    public void Generated_ages_never_reach_before_boot()
    {
        var s = new NodeScenario { Conntrack = new NodeScenario.ConntrackMix { Tcp = 50, Services = 10 } };
        ulong now = 30_000_000_000; // a node up for 30 s
        Assert.All(s.GenerateConntrack(now), e => Assert.InRange(e.LastSeenNanoseconds, 1UL, now));
    }
}
