using CalicoBpf.Fuzz;
using System.Text.Json;

namespace CalicoBpf.Tests.Support;

/// <summary>
/// What the realcalico harness (../shared/realcalico) configured and sent, from its setup.json and
/// traffic.json: the expected side of every check. Nothing here comes from a map.
/// </summary>
public sealed class RealCalicoRecord
{
    public sealed record Workload(string Name, string HostInterface, int IfIndex, IPAddress HostAddress, IPAddress WorkloadAddress, string IngressPolicy);

    public sealed record Backend(IPAddress Address, int Port);

    public sealed record Service(uint Id, IPAddress Address, int Port, IpProtocol Protocol, IReadOnlyList<Backend> Backends);

    /// <summary>One flow: who sent what, and the frames sniffed each way on the host veth.</summary>
    public sealed record Flow(
        string Name, string Workload, string HostInterface, IpProtocol Protocol,
        IPAddress Client, int ClientPort, IPAddress Server, int ServerPort,
        bool Nat, bool Denied, uint? ServiceId, IPAddress? Backend, int? BackendPort,
        int ForwardPackets, long ForwardBytes, int ReversePackets, long ReverseBytes,
        IReadOnlyList<string> ForwardTcpFlags, IReadOnlyList<string> ReverseTcpFlags,
        int RelatedIcmpReverse, DateTime? LastFrame);

    /// <summary>Frames sniffed on one host veth: rx = towards the host (tc ingress), tx = tc egress; ARP included.</summary>
    public sealed record Frames(int Received, int Transmitted);

    public string Release { get; private init; } = string.Empty;
    public string PinPath { get; private init; } = string.Empty;
    public IReadOnlyList<Workload> Workloads { get; private init; } = Array.Empty<Workload>();
    public IReadOnlyList<Service> Services { get; private init; } = Array.Empty<Service>();
    public IReadOnlyList<Flow> Flows { get; private init; } = Array.Empty<Flow>();
    public IReadOnlyDictionary<string, Frames> FramesByInterface { get; private init; } = new Dictionary<string, Frames>();

    /// <summary>Host addresses besides each workload's host IP (10.78.0.9 on rcal-h0, the second backend).</summary>
    public IReadOnlyList<IPAddress> ExtraHostAddresses { get; private init; } = Array.Empty<IPAddress>();

    public Workload WorkloadOf(Flow f) => Workloads.Single(w => w.Name == f.Workload);

    public Service ServiceOf(Flow f) => Services.Single(s => s.Id == f.ServiceId);

    /// <summary>Reads setup.json and traffic.json of one harness output directory (or fixture folder).</summary>
    public static RealCalicoRecord Load(string directory)
    {
        using JsonDocument setup = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory, "setup.json")));
        using JsonDocument traffic = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory, "traffic.json")));
        JsonElement s = setup.RootElement;
        JsonElement t = traffic.RootElement;

        var workloads = s.GetProperty("workloads").EnumerateArray().Select(w => new Workload(
            w.GetProperty("name").GetString()!, w.GetProperty("host_if").GetString()!, w.GetProperty("ifindex").GetInt32(),
            IPAddress.Parse(w.GetProperty("host_ip").GetString()!), IPAddress.Parse(w.GetProperty("wl_ip").GetString()!),
            w.GetProperty("policy_ingress").GetString()!)).ToList();
        var services = s.GetProperty("services").EnumerateArray().Select(v => new Service(
            v.GetProperty("id").GetUInt32(), IPAddress.Parse(v.GetProperty("ip").GetString()!), v.GetProperty("port").GetInt32(),
            (IpProtocol)v.GetProperty("proto").GetByte(),
            v.GetProperty("backends").EnumerateArray().Select(b => new Backend(IPAddress.Parse(b.GetProperty("ip").GetString()!), b.GetProperty("port").GetInt32())).ToList())).ToList();
        var flows = t.GetProperty("flows").EnumerateArray().Select(f => new Flow(
            f.GetProperty("name").GetString()!, f.GetProperty("workload").GetString()!, f.GetProperty("host_if").GetString()!,
            (IpProtocol)f.GetProperty("proto").GetByte(),
            IPAddress.Parse(f.GetProperty("src").GetString()!), f.GetProperty("sport").GetInt32(),
            IPAddress.Parse(f.GetProperty("dst").GetString()!), f.GetProperty("dport").GetInt32(),
            f.GetProperty("nat").GetBoolean(), f.GetProperty("denied").GetBoolean(),
            f.TryGetProperty("service_id", out JsonElement id) ? id.GetUInt32() : null,
            f.TryGetProperty("backend", out JsonElement be) ? IPAddress.Parse(be.GetString()!) : null,
            f.TryGetProperty("backend_port", out JsonElement bp) ? bp.GetInt32() : null,
            f.GetProperty("fwd_packets").GetInt32(), f.GetProperty("fwd_bytes").GetInt64(),
            f.GetProperty("rev_packets").GetInt32(), f.GetProperty("rev_bytes").GetInt64(),
            f.GetProperty("fwd_tcp_flags").EnumerateArray().Select(x => x.GetString()!).ToList(),
            f.GetProperty("rev_tcp_flags").EnumerateArray().Select(x => x.GetString()!).ToList(),
            f.GetProperty("related_icmp_rev").GetInt32(),
            f.GetProperty("last_time").ValueKind == JsonValueKind.Number
                ? DateTime.UnixEpoch.AddTicks((long)(f.GetProperty("last_time").GetDouble() * TimeSpan.TicksPerSecond))
                : null)).ToList();
        var frames = t.GetProperty("frames").EnumerateObject().ToDictionary(
            p => p.Name, p => new Frames(p.Value.GetProperty("rx").GetInt32(), p.Value.GetProperty("tx").GetInt32()));
        var extra = s.TryGetProperty("extra_host_ips", out JsonElement e)
            ? e.EnumerateObject().SelectMany(p => p.Value.EnumerateArray()).Select(a => IPAddress.Parse(a.GetString()!)).ToList()
            : new List<IPAddress>();

        return new RealCalicoRecord
        {
            Release = s.GetProperty("release").GetString()!,
            PinPath = s.GetProperty("pin_path").GetString()!,
            Workloads = workloads,
            Services = services,
            Flows = flows,
            FramesByInterface = frames,
            ExtraHostAddresses = extra,
        };
    }
}

/// <summary>Where the realcalico fixtures and the harness are, from the repository root.</summary>
public static class RealCalicoPaths
{
    public static string RepositoryRoot()
    {
        string dir = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(dir, "tests", "fixtures", "realcalico")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("tests/fixtures/realcalico is not above the test binaries.");
        }

        return dir;
    }

    public static string Fixture(string release) => Path.Combine(RepositoryRoot(), "tests", "fixtures", "realcalico", release);

    /// <summary>The harness, ../shared/realcalico from the repository root.</summary>
    public static string Harness() => Path.GetFullPath(Path.Combine(RepositoryRoot(), "..", "shared", "realcalico"));

    /// <summary>The captured releases (the fixture folders).</summary>
    public static IEnumerable<string> CapturedReleases() =>
        Directory.EnumerateDirectories(Path.Combine(RepositoryRoot(), "tests", "fixtures", "realcalico"))
            .Where(d => File.Exists(Path.Combine(d, "capture.json")))
            .Select(d => Path.GetFileName(d)!)
            .OrderBy(n => n, StringComparer.Ordinal);
}

/// <summary>
/// A node whose maps are the captured bpftool dumps of one fixture folder, read with the module's
/// own <see cref="BpftoolJsonReader"/> (as a remote node's maps are). The pins' types and sizes,
/// the possible CPUs and the clock come from capture.json, the interfaces from link-*.json: what
/// the node said in the same run. Read-only.
/// </summary>
public sealed class RealCalicoCapturedNode : ReadOnlyNode
{
    private readonly string _directory;
    private readonly Dictionary<string, BpfMapDescriptor> _maps = new(StringComparer.Ordinal);
    private readonly int _cpus;
    private readonly ClockSample _clock;
    private readonly Dictionary<int, NetworkLink> _links = new();

    public RealCalicoCapturedNode(string directory)
    {
        _directory = directory;
        using JsonDocument capture = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(directory, "capture.json")));
        JsonElement c = capture.RootElement;
        uint id = 1;
        foreach (JsonProperty m in c.GetProperty("maps").EnumerateObject())
        {
            JsonElement v = m.Value;
            _maps[m.Name] = new BpfMapDescriptor(id++, CommandDataplane.ParseType(v.GetProperty("type").GetString()!),
                v.GetProperty("bytes_key").GetInt32(), v.GetProperty("bytes_value").GetInt32(), v.GetProperty("max_entries").GetInt32(),
                v.GetProperty("flags").GetUInt32(), m.Name);
        }

        _cpus = CountCpus(c.GetProperty("possible_cpus").GetString()!);
        JsonElement clock = c.GetProperty("clock");
        _clock = new ClockSample(clock.GetProperty("monotonic_ns").GetUInt64(),
            DateTime.UnixEpoch.AddTicks(clock.GetProperty("realtime_ns").GetInt64() / 100));

        foreach (string file in Directory.EnumerateFiles(directory, "link-*.json").Where(f => !f.EndsWith("-before.json", StringComparison.Ordinal)))
        {
            using JsonDocument link = JsonDocument.Parse(File.ReadAllBytes(file));
            foreach (JsonElement l in link.RootElement.EnumerateArray())
            {
                int ifIndex = l.GetProperty("ifindex").GetInt32();
                _links[ifIndex] = new NetworkLink(ifIndex, l.GetProperty("ifname").GetString()!);
            }
        }
    }

    /// <summary>/sys/devices/system/cpu/possible: "0-1", "0,2-3".</summary>
    private static int CountCpus(string possible) =>
        possible.Split(',').Sum(r => r.Contains('-') ? int.Parse(r.Split('-')[1]) - int.Parse(r.Split('-')[0]) + 1 : 1);

    public override string Node => "rcal";

    public override string PinDirectory => "/tmp/rcal-bpffs/globals";

    public override IReadOnlyList<CalicoMapName> ListMaps() =>
        _maps.Keys.Select(MapCatalog.Parse).OfType<CalicoMapName>().OrderBy(m => m.PinName, StringComparer.Ordinal).ToList();

    public override IMapReader OpenMap(string pinName)
    {
        string dump = Path.Combine(_directory, "maps", pinName + ".json");
        if (!_maps.TryGetValue(pinName, out BpfMapDescriptor? d) || !File.Exists(dump))
        {
            throw NotPinned(pinName);
        }

        return new DumpReader(d, dump, _cpus);
    }

    public override ClockSample SampleClock() => _clock;

    public override IReadOnlyDictionary<int, NetworkLink> ListLinks() => _links;

    public override IReadOnlyList<QdiscStatistic> ListQdiscs() => throw new NotSupportedException("qdiscs are not replayed from a capture");

    public override IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken) =>
        File.ReadLines(Path.Combine(_directory, "trace.txt"));

    private sealed class DumpReader : IMapReader
    {
        private readonly string _dump;
        private readonly int _cpus;

        public DumpReader(BpfMapDescriptor descriptor, string dump, int cpus)
        {
            Descriptor = descriptor;
            _dump = dump;
            _cpus = cpus;
        }

        public BpfMapDescriptor Descriptor { get; }

        public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken)
        {
            using FileStream stream = File.OpenRead(_dump);
            foreach (RawEntryBatch batch in new BpftoolJsonReader(stream, Descriptor, _cpus, Descriptor.Name).ReadBatches(4096, cancellationToken))
            {
                yield return batch;
            }
        }

        public long? CountEntries(CancellationToken cancellationToken) => ReadEntries(cancellationToken).Sum(b => (long)b.Count);

        public void Dispose()
        {
        }
    }
}
