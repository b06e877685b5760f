using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using CalicoBpf.Cluster;

namespace CalicoBpf.Tests;

/// <summary>
/// What Felix writes for a service, checked against Calico's own syncer tests
/// (tests/fixtures/calico-ut/proxy-syncer.json), and how Services and EndpointSlices become the
/// state the syncer is given.
/// </summary>
public class ServiceIntentTests
{
    private static JsonArray Cases()
    {
        string dir = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(dir, "tests", "fixtures", "calico-ut")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("tests/fixtures/calico-ut is not above the test binaries.");
        }

        JsonNode doc = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "tests", "fixtures", "calico-ut", "proxy-syncer.json")))!;
        Assert.Equal("proxy-syncer", (string?)doc["family"]);
        return doc["cases"]!.AsArray();
    }

    public static IEnumerable<object[]> SyncerCases() => Cases().Select(c => new object[] { (string)c!["id"]! });

    private static ServicePortState State(JsonNode s) => new()
    {
        Service = (string)s["service"]!,
        ClusterIP = IPAddress.Parse((string)s["clusterIP"]!),
        Port = (int)s["port"]!,
        Protocol = (string)s["protocol"]! == "UDP" ? IpProtocol.Udp : IpProtocol.Tcp,
        NodePort = (int?)s["nodePort"] ?? 0,
        ExternalIPs = (s["externalIPs"] as JsonArray ?? new JsonArray()).Select(a => IPAddress.Parse((string)a!)).ToList(),
        InternalLocal = (bool?)s["internalLocal"] ?? false,
        ExternalLocal = (bool?)s["externalLocal"] ?? false,
        AffinitySeconds = (uint?)s["affinitySeconds"] ?? 0,
        Endpoints = s["endpoints"]!.AsArray().Select(e => new IntentEndpoint(IPAddress.Parse((string)e!["address"]!), (int)e["port"]!,
            (bool?)e["ready"] ?? false, (bool?)e["terminating"] ?? false, (bool?)e["local"] ?? false)).ToList(),
    };

    [Theory]
    [MemberData(nameof(SyncerCases))]
    public void Frontends_and_backends_are_those_Calicos_syncer_tests_expect(string id)
    {
        JsonObject c = Cases().Single(x => (string?)x!["id"] == id)!.AsObject();
        var addresses = c["nodePortAddresses"]!.AsArray().Select(a => IPAddress.Parse((string)a!)).ToList();
        var states = c["services"]!.AsArray().Select(s => State(s!)).ToList();

        // What we would write: every frontend with the value Felix gives it (one id per service port).
        var written = new Dictionary<string, (string Service, int Count, int Local, uint Flags, uint Affinity)>();
        foreach (ServicePortState s in states)
        {
            foreach (ExpectedFrontend f in ServiceIntent.Frontends(s, addresses).Where(f => !f.Drop))
            {
                written[f.Frontend] = (s.Service, ServiceIntent.Backends(s).Count, ServiceIntent.LocalCount(s), (uint)f.PolicyFlags, s.AffinitySeconds);
            }
        }

        JsonNode calico = c["calico"]!;
        var expected = calico["frontends"]!.AsArray();
        Assert.Equal(expected.Select(f => (string)f!["frontend"]!).OrderBy(x => x, StringComparer.Ordinal), written.Keys.OrderBy(x => x, StringComparer.Ordinal));
        foreach (JsonNode? f in expected)
        {
            var w = written[(string)f!["frontend"]!];
            Assert.Equal((string)f["service"]!, w.Service);
            Assert.Equal((int)f["count"]!, w.Count);
            if (f["local"] is { } local)
            {
                Assert.Equal((int)local, w.Local);
            }

            if (f["flags"] is { } flags)
            {
                Assert.Equal((uint)flags, w.Flags);
            }

            if (f["affinitySeconds"] is { } affinity)
            {
                Assert.Equal((uint)affinity, w.Affinity);
            }

            if (f["sameAs"] is { } same)
            {
                Assert.Equal(written[(string)same!], w);
            }

            if (f["sameId"] is { } sameId)
            {
                Assert.Equal(written[(string)sameId!].Service, w.Service);
            }
        }

        foreach ((string service, JsonNode? list) in calico["backends"]!.AsObject())
        {
            ServicePortState s = states.Single(x => x.Service == service);
            Assert.Equal(list!.AsArray().Select(b => (string)b!).OrderBy(x => x, StringComparer.Ordinal),
                ServiceIntent.Backends(s).Select(b => b.ToString()).OrderBy(x => x, StringComparer.Ordinal));
        }

        foreach ((string service, JsonNode? list) in calico["localFirst"]?.AsObject() ?? new JsonObject())
        {
            ServicePortState s = states.Single(x => x.Service == service);
            var first = list!.AsArray().Select(b => (string)b!).ToList();
            Assert.Equal(first.OrderBy(x => x, StringComparer.Ordinal),
                ServiceIntent.Backends(s).Take(first.Count).Select(b => b.ToString()).OrderBy(x => x, StringComparer.Ordinal));
        }
    }

    private static JsonObject Json(string text) => JsonNode.Parse(text)!.AsObject();

    [Fact]
    public void Services_and_EndpointSlices_become_the_proxys_service_ports()
    {
        var services = new[]
        {
            Json("""{"metadata":{"namespace":"shop","name":"web"},"spec":{"type":"LoadBalancer","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],"externalTrafficPolicy":"Local","sessionAffinity":"ClientIP","ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30080},{"name":"dns","protocol":"UDP","port":53,"targetPort":5353}]},"status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.5"},{"ip":"203.0.113.6","ipMode":"Proxy"}]}}}"""),
            Json("""{"metadata":{"namespace":"shop","name":"headless"},"spec":{"type":"ClusterIP","clusterIP":"None","ports":[{"port":80}]}}"""),
            Json("""{"metadata":{"namespace":"shop","name":"ext"},"spec":{"type":"ExternalName","externalName":"example.com"}}"""),
            Json("""{"metadata":{"namespace":"shop","name":"other-proxy","labels":{"service.kubernetes.io/service-proxy-name":"x"}},"spec":{"type":"ClusterIP","clusterIP":"10.96.0.11","ports":[{"port":80}]}}"""),
        };
        var slices = new[]
        {
            Json("""{"metadata":{"namespace":"shop","name":"web-a","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","ports":[{"name":"http","protocol":"TCP","port":8080}],"endpoints":[{"addresses":["10.68.0.5"],"nodeName":"n1","conditions":{"ready":true}},{"addresses":["10.68.1.5"],"nodeName":"n2"},{"addresses":["10.68.1.6"],"nodeName":"n2","conditions":{"ready":false,"serving":true,"terminating":true}}]}"""),
            Json("""{"metadata":{"namespace":"shop","name":"web-b","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","ports":[{"name":"dns","protocol":"UDP","port":5353}],"endpoints":[{"addresses":["10.68.0.5"],"nodeName":"n1"}]}"""),
            Json("""{"metadata":{"namespace":"shop","name":"web-c","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv6","ports":[{"name":"http","protocol":"TCP","port":8080}],"endpoints":[{"addresses":["fd00::5"],"nodeName":"n1"}]}"""),
        };

        var ports = ServiceIntent.OnNode(ServiceIntent.FromKubernetes(services, slices, AddressFamily.InterNetwork), "n1", null);

        Assert.Equal(new[] { "shop/web:http/TCP", "shop/web:dns/UDP" }, ports.Select(p => p.Display));
        ServicePortState http = ports[0];
        Assert.Equal(30080, http.NodePort);
        Assert.True(http.ExternalLocal);
        Assert.False(http.InternalLocal);
        Assert.Equal(10800u, http.AffinitySeconds);
        Assert.Equal(new[] { IPAddress.Parse("203.0.113.5") }, http.LoadBalancerIPs);
        Assert.Equal(new[] { "10.68.0.5:8080", "10.68.1.5:8080" }, ServiceIntent.Backends(http).Select(b => b.ToString()));
        Assert.Equal(1, ServiceIntent.LocalCount(http));
        Assert.Equal(new[] { "10.68.0.5:5353" }, ServiceIntent.Backends(ports[1]).Select(b => b.ToString()));

        var frontends = ServiceIntent.Frontends(http, ServiceIntent.NodePortAddresses(new[] { IPAddress.Parse("172.18.0.1") }, AddressFamily.InterNetwork)).ToList();
        Assert.Equal(new[] { "ClusterIP 10.96.0.10:80 None", "LoadBalancer 203.0.113.5:80 ExternalLocal", "NodePort 172.18.0.1:30080 ExternalLocal", "NodePort 255.255.255.255:30080 ExternalLocal" },
            frontends.Select(f => $"{f.Kind} {f.Frontend} {f.PolicyFlags}"));
    }

    [Fact]
    public void Source_ranges_make_one_frontend_per_range_and_a_drop_entry()
    {
        var s = new ServicePortState
        {
            Service = "shop/web",
            ClusterIP = IPAddress.Parse("10.96.0.10"),
            Port = 80,
            LoadBalancerIPs = new[] { IPAddress.Parse("203.0.113.5") },
            SourceRanges = new[] { CalicoBpf.Maps.AddressPrefix.Parse("198.51.100.0/24"), CalicoBpf.Maps.AddressPrefix.Parse("fd00::/8") },
            InternalLocal = true,
            NodePort = 30080,
        };

        var frontends = ServiceIntent.Frontends(s, ServiceIntent.NodePortAddresses(new[] { IPAddress.Parse("172.18.0.1") }, AddressFamily.InterNetwork)).ToList();

        Assert.Equal(new[] { "ClusterIP 10.96.0.10:80 False", "LoadBalancer 203.0.113.5:80 src 198.51.100.0/24 False", "LoadBalancer 203.0.113.5:80 True", "NodePort 172.18.0.1:30080 False" },
            frontends.Select(f => $"{f.Kind} {f.Frontend} {f.Drop}"));
    }
}
