using System.Diagnostics;
using System.Globalization;
using System.Net;
using CalicoBpf;
using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Simulation;
using CalicoBpf.Transport;

// bench fill <pinDir> <entries>          creates cali_v4_ct4 (Calico's type and sizes) and fills it
// bench core <pinDir> <repeats>          times Core: raw batched enumeration, and enumeration + decoding
// bench fill-nat <pinDir> <frontends>    fills cali_v4_nat_fe3 and cali_v4_nat_be (4 backends a frontend)
// bench fill-routes <pinDir> <routes>    fills cali_v4_routes
// bench fill-flow <pinDir> <policyDir>    makes 10.64.0.0/13 a local workload (calibench0) with an egress policy, for Test-BpfFlow
// bench fill-counters <pinDir> <n>       creates cali_counters6 with n interfaces (ifindex 1000 on), every hook, every counter
// bench watch <pinDir> <repeats>         times Watch-BpfConntrack's sampler on cali_v4_ct4 against one full decoded read, with its memory
// bench parse-dump <dump.json.gz> <repeats> times the client's share of a remote dump of cali_v4_ct4 (bpftool -j, gzip'd as a node sends
//                                        it): gunzip alone, then gunzip and BpftoolJsonReader's parse into raw batches
if (args.Length < 3)
{
    Console.Error.WriteLine("usage: CalicoBpf.Bench fill|core <pinDir> <n>");
    return 2;
}

string pinDir = args[1];
int n = args[0] == "fill-flow" ? 0 : int.Parse(args[2], CultureInfo.InvariantCulture);
switch (args[0])
{
    case "fill":
        return Fill(pinDir, n);
    case "core":
        return Core(pinDir, n);
    case "fill-nat":
        return FillNat(pinDir, n);
    case "fill-routes":
        return FillRoutes(pinDir, n);
    case "fill-flow":
        return FillFlow(pinDir, args[2]);
    case "fill-counters":
        return FillCounters(pinDir, n);
    case "watch":
        return Watch(pinDir, n);
    case "parse-dump":
        return ParseDump(pinDir, n);
    default:
        Console.Error.WriteLine($"unknown command {args[0]}");
        return 2;
}

static int Fill(string pinDir, int entries)
{
    using SimulatedDataplane sim = SimulatedDataplane.Claim(pinDir);
    MapSpec spec = MapSpecs.Conntrack(4, ipv6: false);
    BpfMap map = sim.CreateMap(spec, Math.Max(spec.MaxEntries, entries));
    ConntrackLayout layout = ConntrackLayout.For(spec.PinName, 4, spec.KeySize, spec.ValueSize);
    ulong now = KernelInfo.MonotonicNanoseconds();
    var sw = Stopwatch.StartNew();
    sim.WriteConntrack(map, layout, Generate(entries, now));
    long count = map.CountEntries();
    Console.WriteLine($"{count} {sw.Elapsed.TotalMilliseconds:F0}");
    return 0;
}

static int FillNat(string pinDir, int frontends)
{
    using SimulatedDataplane sim = SimulatedDataplane.Claim(pinDir);
    MapSpec feSpec = MapSpecs.Current.First(m => m.BaseName == "cali_v4_nat_fe");
    MapSpec beSpec = MapSpecs.Current.First(m => m.BaseName == "cali_v4_nat_be");
    BpfMap fe = sim.CreateMap(feSpec, Math.Max(feSpec.MaxEntries, frontends));
    BpfMap be = sim.CreateMap(beSpec, Math.Max(beSpec.MaxEntries, frontends * 4));
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < frontends; i++)
    {
        uint id = (uint)i + 1;
        var vip = new IPAddress(new byte[] { 10, 96, (byte)(i >> 8), (byte)i });
        fe.Update(NatMaps.EncodeFrontendKey(vip, 80 + (i >> 16), IpProtocol.Tcp), NatMaps.EncodeFrontendValue(id, 4, 1, 0, NatFrontendFlags.None));
        for (int o = 0; o < 4; o++)
        {
            var backend = new IPAddress(new byte[] { 10, (byte)(64 + o), (byte)(i >> 8), (byte)i });
            be.Update(NatMaps.EncodeIdOrdinal(id, o), NatMaps.EncodeDestination(backend, 8080));
        }
    }

    Console.WriteLine($"{fe.CountEntries()} {be.CountEntries()} {sw.Elapsed.TotalMilliseconds:F0}");
    return 0;
}

static int FillRoutes(string pinDir, int routes)
{
    using SimulatedDataplane sim = SimulatedDataplane.Claim(pinDir);
    MapSpec spec = MapSpecs.Current.First(m => m.BaseName == "cali_v4_routes");
    BpfMap map = sim.CreateMap(spec, Math.Max(spec.MaxEntries, routes));
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < routes; i++)
    {
        var address = new IPAddress(new byte[] { 10, (byte)(64 + (i >> 16)), (byte)(i >> 8), (byte)i });
        map.Update(RouteMap.EncodeKey(address, 32), RouteMap.EncodeValue(RouteFlags.Workload | RouteFlags.InPool, false, IPAddress.Parse("172.18.0.12")));
    }

    Console.WriteLine($"{map.CountEntries()} {sw.Elapsed.TotalMilliseconds:F0}");
    return 0;
}

// The clients above 10.68.0.0 (no /32 of fill-routes) become workloads of one local interface, whose egress
// policy Felix's debug file holds: Test-BpfFlow then takes each of their flows through every stage
// (interface, conntrack, NAT, routes, policy with an IP set), not only to "not a local workload".
static int FillFlow(string pinDir, string policyDir)
{
    using SimulatedDataplane sim = SimulatedDataplane.Claim(pinDir);
    using BpfMap routes = BpfMap.OpenPinned(Path.Combine(sim.PinDirectory, "cali_v4_routes"), writable: true);
    // The map is full (fill-routes): the last /32 makes room for the workloads' route.
    routes.Delete(RouteMap.EncodeKey(IPAddress.Parse("10.67.255.255"), 32));
    routes.Update(RouteMap.EncodeKey(IPAddress.Parse("10.64.0.0"), 13), RouteMap.EncodeValue(RouteFlags.Local | RouteFlags.Workload | RouteFlags.InPool, false, null, 1));
    MapSpec ifSpec = MapSpecs.Current.First(m => m.BaseName == "cali_iface");
    BpfMap iface = sim.CreateMap(ifSpec, ifSpec.MaxEntries);
    iface.Update(BitConverter.GetBytes(1u), InterfaceStateMap.EncodeValue(4, InterfaceStateFlags.Workload | InterfaceStateFlags.V4Ready, "calibench0", -1, 0, 1, -1, -1, -1, 2, 3));
    MapSpec ctrSpec = MapSpecs.Current.First(m => m.BaseName == "cali_rule_ctrs");
    BpfMap counters = sim.CreateMap(ctrSpec, ctrSpec.MaxEntries);
    var policy = new PolicySpec
    {
        Interface = "calibench0",
        Hook = "egress",
        Tiers =
        {
            new PolicySpec.TierSpec
            {
                Name = "default",
                Policies =
                {
                    new PolicySpec.PolicyRulesSpec
                    {
                        Name = "bench/knp.default.web",
                        Rules =
                        {
                            new PolicySpec.RuleSpec { Action = "deny", Protocol = "TCP", Ports = { 23 }, MatchId = 900001, Hits = 1 },
                            new PolicySpec.RuleSpec { Action = "allow", Protocol = "TCP", Ports = { 443 }, Sources = { "192.168.0.0/16" }, MatchId = 900002, Hits = 2 },
                            new PolicySpec.RuleSpec { Action = "allow", Protocol = "TCP", Ports = { 8080 }, Sources = { "10.64.0.0/10" }, MatchId = 900003, Hits = 3 },
                        },
                    },
                },
            },
        },
    };
    PolicySeeding.Write(new[] { policy }, policyDir, counters);
    Console.WriteLine("1 1");
    return 0;
}

static IEnumerable<ConntrackEntry> Generate(int entries, ulong now)
{
    var backend = IPAddress.Parse("10.65.200.9");
    var service = IPAddress.Parse("10.96.0.10");
    var leg = new ConntrackLeg { Bytes = 1500, Packets = 10, SynSeen = true, AckSeen = true, Approved = true, Opener = true, IfIndex = 7 };
    var back = new ConntrackLeg { Bytes = 9000, Packets = 8, SynSeen = true, AckSeen = true, Approved = true };
    for (int i = 0; i < entries; i++)
    {
        // A unique client per entry: 10.(64+i/65536).(i/256%256).(i%256).
        var client = new IPAddress(new byte[] { 10, (byte)(64 + (i >> 16)), (byte)(i >> 8), (byte)i });
        int kind = i % 10;
        yield return new ConntrackEntry
        {
            Protocol = kind == 9 ? IpProtocol.Udp : IpProtocol.Tcp,
            Type = kind switch { 7 => ConntrackType.NatForward, 8 => ConntrackType.NatReverse, _ => ConntrackType.Normal },
            SourceAddressValue = client,
            SourcePort = 40000 + (i % 20000),
            DestinationAddressValue = kind == 7 ? service : backend,
            DestinationPort = kind == 7 ? 53 : 8080,
            ServiceAddressValue = kind is 7 or 8 ? service : null,
            ServicePort = kind is 7 or 8 ? 53 : null,
            ReverseKey = kind == 7 ? new ConntrackKey(IpProtocol.Tcp, client, 40000 + (i % 20000), backend, 8080) : null,
            LastSeenNanoseconds = now - (ulong)(i % 3600) * 1_000_000_000UL % Math.Max(now, 1),
            Forward = kind == 7 ? ConntrackLeg.Empty : leg,
            Reverse = kind == 7 ? ConntrackLeg.Empty : back,
        };
    }
}

static int FillCounters(string pinDir, int interfaces)
{
    using SimulatedDataplane sim = SimulatedDataplane.Claim(pinDir);
    BpfMap map = sim.CreateMap(MapSpecs.Counters(6, 27));
    var totals = Enumerable.Range(0, 27).ToDictionary(i => i, i => (ulong)(1000 + i));
    for (int i = 0; i < interfaces; i++)
    {
        for (int hook = 0; hook < 3; hook++)
        {
            sim.WriteCounters(map, 1000 + i, hook, totals);
        }
    }

    Console.WriteLine(map.CountEntries());
    return 0;
}

/// <summary>
/// One full decoded read (ConntrackReader.Read) against ConntrackWatcher samples of the same table (a
/// baseline, then samples with nothing changed), each timed, with the managed heap the watcher keeps.
/// Prints "read MS", "baseline MS HEAPMB", then "sample MS HEAPMB" per repeat.
/// </summary>
static int Watch(string pinDir, int repeats)
{
    var node = new LocalDataplane(pinDir, "bench");
    var query = new ConntrackQuery();
    long HeapMb() => GC.GetTotalMemory(forceFullCollection: true) / (1024 * 1024);
    var sw = Stopwatch.StartNew();
    long read = ConntrackReader.Read(node, query).LongCount();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"read {sw.Elapsed.TotalMilliseconds:F0} {read}"));
    long before = HeapMb();
    var watcher = new CalicoBpf.Sampling.ConntrackWatcher();
    sw.Restart();
    int changes = watcher.Sample(node, query, new CalicoBpf.Sampling.SampleTick(0, DateTime.UtcNow), null, CancellationToken.None).Count();
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"baseline {sw.Elapsed.TotalMilliseconds:F0} {HeapMb() - before} {watcher.Count}"));
    for (int r = 1; r <= repeats; r++)
    {
        sw.Restart();
        changes = watcher.Sample(node, query, new CalicoBpf.Sampling.SampleTick(r, DateTime.UtcNow), null, CancellationToken.None).Count();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sample {sw.Elapsed.TotalMilliseconds:F0} {HeapMb() - before} {changes}"));
    }

    GC.KeepAlive(watcher);
    return 0;
}

static int ParseDump(string file, int repeats)
{
    var map = new BpfMapDescriptor(0, BpfMapType.LruHash, 16, 88, 512000, 0, "cali_v4_ct4");
    for (int r = 0; r < repeats; r++)
    {
        var sw = Stopwatch.StartNew();
        byte[] buffer = new byte[64 * 1024];
        long bytes = 0;
        using (var gz = new System.IO.Compression.GZipStream(File.OpenRead(file), System.IO.Compression.CompressionMode.Decompress))
        {
            int k;
            while ((k = gz.Read(buffer)) > 0)
            {
                bytes += k;
            }
        }

        double gunzipMs = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        long entries = 0;
        using (var gz = new System.IO.Compression.GZipStream(File.OpenRead(file), System.IO.Compression.CompressionMode.Decompress))
        {
            foreach (RawEntryBatch b in new BpftoolJsonReader(gz, map, 2, file).ReadBatches(4096, CancellationToken.None))
            {
                entries += b.Count;
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{bytes} {gunzipMs:F0} {entries} {sw.Elapsed.TotalMilliseconds:F0}"));
    }

    return 0;
}

static int Core(string pinDir, int repeats)
{
    var node = new LocalDataplane(pinDir, "bench");
    for (int r = 0; r < repeats; r++)
    {
        long allocBefore = GC.GetTotalAllocatedBytes(precise: true);
        var sw = Stopwatch.StartNew();
        long raw = 0;
        using (IMapReader reader = node.OpenMap("cali_v4_ct4"))
        {
            foreach (RawEntryBatch b in reader.ReadEntries(CancellationToken.None))
            {
                raw += b.Count;
            }
        }

        double rawMs = sw.Elapsed.TotalMilliseconds;
        long rawAlloc = GC.GetTotalAllocatedBytes(precise: true) - allocBefore;

        sw.Restart();
        long decoded = 0;
        ulong bytes = 0;
        foreach (ConntrackEntry e in ConntrackReader.Read(node, new ConntrackQuery()))
        {
            decoded++;
            bytes += e.BytesForward;
        }

        double decodeMs = sw.Elapsed.TotalMilliseconds;
        GC.KeepAlive(bytes);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{raw} {rawMs:F1} {decoded} {decodeMs:F1} {rawAlloc}"));
    }

    return 0;
}
