using Xunit;

namespace CalicoBpf.TestCluster.Tests;

/// <summary>
/// The test cluster's scenario reader: every scenario the tests and the demo use is valid, and a
/// scenario the cluster could not serve as a real one would is refused before anything is created,
/// naming the entry and the field.
/// </summary>
public class ClusterScenarioTests
{
    private static string Root()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "CalicoBpf.psd1")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("CalicoBpf.psd1 is not above the test binaries.");
        }

        return dir;
    }

    public static IEnumerable<object[]> Scenarios() =>
        Directory.EnumerateFiles(Path.Combine(Root(), "tests", "Pester"), "*.yaml")
            .Append(Path.Combine(Root(), "demo", "cluster.yaml"))
            .Select(f => new object[] { Path.GetRelativePath(Root(), f) });

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Every_scenario_in_use_is_valid(string file)
    {
        ClusterScenario s = ClusterScenario.Load(Path.Combine(Root(), file));
        Assert.NotEmpty(s.Nodes);
    }

    [Theory]
    [InlineData("nodes: [ { name: ../../etc } ]", "node \"../../etc\" is not a Kubernetes name")]
    [InlineData("nodes: [ { name: Node-A } ]", "node \"Node-A\"")]
    [InlineData("nodes: [ { name: a }, { name: a } ]", "node \"a\" is there twice")]
    [InlineData("nodes: [ { name: a, address: 10.0.0.300 } ]", "node a's address \"10.0.0.300\" is not an IP address")]
    [InlineData("nodes: [ { name: a, interfaces: [ eth0, eth0 ] } ]", "node a's interfaces [eth0, eth0]")]
    [InlineData("nodes: [ { name: a, interfaces: [ averyveryverylongname ] } ]", "not distinct Linux interface names")]
    [InlineData("nodes: [ { name: a, execDelayMilliseconds: -1 } ]", "cannot be negative")]
    [InlineData("nodes: [ { name: a, record: a.jsonl, replay: a.jsonl } ]", "node a cannot both record its execs and replay them")]
    [InlineData("replayedNodes: { count: 0, recording: a.jsonl }", "replayedNodes needs a count of 1 to 5000")]
    [InlineData("replayedNodes: { count: 5001, recording: a.jsonl }", "replayedNodes needs a count of 1 to 5000")]
    [InlineData("replayedNodes: { count: 3 }", "replayedNodes needs a count of 1 to 5000, a recording")]
    [InlineData("replayedNodes: { count: 2, namePrefix: n, recording: a.jsonl }\nnodes: [ { name: n001 } ]", "node \"n001\" is there twice")]
    [InlineData("pods: [ { name: p, node: b, ip: 10.0.0.1 } ]", "runs on node \"b\", which the scenario does not have")]
    [InlineData("pods: [ { name: p, ip: nowhere } ]", "pod default/p's ip \"nowhere\" is not an IP address")]
    [InlineData("pods: [ { name: p, namespace: Shop, ip: 10.0.0.1 } ]", "pod namespace \"Shop\"")]
    [InlineData("services: [ { name: web, type: ExternalName } ]", "type \"ExternalName\" is not ClusterIP")]
    [InlineData("services: [ { name: kubernetes } ]", "service default/kubernetes is there twice")]
    [InlineData("services: [ { name: web, ports: [ { port: 70000 } ] } ]", "port 70000/TCP")]
    [InlineData("services: [ { name: web, ports: [ { port: 80, protocol: ICMP } ] } ]", "port 80/ICMP")]
    [InlineData("install: helm", "install \"helm\" is neither operator nor manifest")]
    [InlineData("calicoCrds: ../secrets", "calicoCrds \"../secrets\" is not a folder of tests/fixtures/calico (head, v3.28.5, v3.30.7)")]
    [InlineData("calicoCrds: v3.99.0", "calicoCrds \"v3.99.0\"")]
    [InlineData("calicoApiGroups: [ projectcalico.org/v2 ]", "calicoApiGroups must name")]
    [InlineData("apiFaults: [ { path: api/v1/nodes, status: 500 } ]", "apiFaults entry api/v1/nodes 500")]
    [InlineData("apiFaults: [ { path: /api/v1/nodes, status: 200 } ]", "a status of 400 to 599")]
    public void Refuses_what_a_cluster_could_not_serve(string yaml, string message)
    {
        var ex = Assert.Throws<InvalidDataException>(() => ClusterScenario.Parse(yaml));
        Assert.StartsWith("The cluster scenario is not valid: ", ex.Message);
        Assert.Contains(message, ex.Message);
    }

    [Fact]
    public void Bad_yaml_names_line_and_column()
    {
        var ex = Assert.Throws<FormatException>(() => ClusterScenario.Parse("nodes:\n  - { name: a\n"));
        Assert.Contains("Line 3", ex.Message);
    }
}

/// <summary>YAML to JSON (the scenario's free-form sections, CRDs, manifests): what has no JSON form is a FormatException naming where.</summary>
public class YamlToJsonTests
{
    [Theory]
    [InlineData("nodes:\n  - { { a } }\n", "Line 2, column 7: a key is a mapping or a list, not text.")]
    [InlineData("a: &x [ *x ]\n", "nests deeper than 100 levels")]
    public void Refuses_what_json_cannot_say(string yaml, string message)
    {
        var ex = Assert.Throws<FormatException>(() => CalicoBpf.Isolation.DependencyLoadContext.Yaml.ToJsonDocuments(yaml));
        Assert.Contains(message, ex.Message);
    }

    [Fact]
    public void Refuses_aliases_that_expand_without_end()
    {
        // Nine levels of ten aliases each: a billion nodes from a few hundred bytes.
        var lines = new List<string> { "a0: &a0 [x, x, x, x, x, x, x, x, x, x]" };
        for (int i = 1; i < 9; i++)
        {
            lines.Add($"a{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 10))}]");
        }

        var ex = Assert.Throws<FormatException>(() => CalicoBpf.Isolation.DependencyLoadContext.Yaml.ToJsonDocuments(string.Join('\n', lines)));
        Assert.Contains("expands to more than 1,000,000 nodes", ex.Message);
    }

    [Fact]
    public void Nesting_within_the_limit_is_json()
    {
        string deep = "a: " + new string('[', 50) + new string(']', 50);
        Assert.StartsWith("{\"a\":[[[", CalicoBpf.Isolation.DependencyLoadContext.Yaml.ToJsonDocuments(deep)[0]);
    }
}
