using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using CalicoBpf.Bundles;
using CalicoBpf.Fuzz;

namespace CalicoBpf.Tests;

/// <summary>
/// Bundles: what a node answered while a bundle was made is what it answers offline (real maps in a
/// private bpffs, read by the module's readers), failures included; the size bound leaves out typed
/// JSON, then whole maps, never part of one; what was not asked is said, not guessed; secrets go.
/// </summary>
public sealed class BundleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("calicobpf-bundle").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static NodeScenario Scenario() => NodeScenario.Parse("""
        node: b1
        randomSeed: 3
        conntrack: { tcp: 300, udp: 40, icmp: 5, services: 12, nodePorts: 4 }
        interfaces:
          - name: lo
            ingress: { TotalPackets: 100, DroppedByPolicy: 5 }
        services:
          - { id: 1, address: 10.96.0.10, port: 53, protocol: UDP, backends: [10.65.0.5:53, 10.65.2.9:53], localBackends: 1 }
          - { id: 2, address: 10.96.0.20, port: 80, protocol: TCP, nodePort: 30080, backends: [10.65.0.8:8080], affinitySeconds: 600 }
          - { id: 5, address: 10.96.0.40, port: 443, protocol: TCP, backends: [10.65.0.21:8443, 10.65.0.22:8443], maglevSlots: 13 }
        routes:
          - { cidr: 10.65.2.0/26, type: remote workload in-pool tunneled, nextHop: 172.18.0.12 }
          - { cidr: 172.18.0.10/32, type: local host }
        ipSets:
          - { id: "0x0000000000000007", members: [10.65.0.5/32, 10.65.2.0/24] }
        arp:
          - { address: 172.18.0.11, interface: lo, sourceMac: "66:e2:1f:00:0a:01", destinationMac: "66:e2:1f:00:0b:02" }
        """);

    /// <summary>A local bundle of <paramref name="live"/> (as Export-CalicoBpfDiagnostic without -Node makes one).</summary>
    private string Export(INodeDataplane live, long maxSize = 1L << 30, string name = "b.zip")
    {
        string path = Path.Combine(_dir, name);
        using var export = new DiagnosticExport(path, null, new ExportOptions { MaxSize = maxSize }, "0.0-test");
        export.CaptureNode(live.Node, new CalicoNode { Node = live.Node }, () => live, NullReporter.Instance, CancellationToken.None);
        export.RunChecks(Diagnostics.Checks.All, CancellationToken.None);
        export.WriteFacts();
        export.WriteObjects(2, NullReporter.Instance, CancellationToken.None);
        export.Complete(CancellationToken.None);
        return path;
    }

    private static List<string> Json<T>(IEnumerable<T> objects, params string[] volatileProperties) => objects.Select(o =>
    {
        var node = (JsonObject)JsonNode.Parse(JsonSerializer.Serialize(o, o!.GetType(), BundleFormat.Json))!;
        foreach (string v in volatileProperties)
        {
            node.Remove(v);
        }

        return node.ToJsonString();
    }).ToList();

    private static List<string> TypedJson(string zip, string node, string family)
    {
        using ZipArchive archive = ZipFile.OpenRead(zip);
        ZipArchiveEntry? e = archive.GetEntry(BundleFormat.Objects(node, family));
        if (e is null)
        {
            return new List<string>();
        }

        using var r = new StreamReader(new GZipStream(e.Open(), CompressionMode.Decompress));
        return r.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
    }

    [SkippableFact]
    public void Every_reader_reads_offline_what_it_read_live_and_the_typed_json_is_those_objects()
    {
        using var fs = new BpfFsScope();
        using (SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory))
        {
            Scenario().Seed(sim, new Dictionary<string, int> { ["lo"] = 1 });
        }

        var live = new LocalDataplane(fs.PinDirectory, "b1");
        string zip = Export(live);
        using BundleCluster bundle = BundleCluster.Open(zip);
        using BundleNode offline = bundle.OpenNode("b1", null);

        string[] moving = { "Age", "LastSeen", "ResetSeen", "Created", "LastRefreshed" };
        var readers = new (string Family, Func<INodeDataplane, IEnumerable<object>> Read)[]
        {
            ("conntrack", n => ConntrackReader.Read(n, new ConntrackQuery())),
            ("nat", n => NatMaps.ReadFrontends(n, new NatQuery())),
            ("nat-affinity", n => NatMaps.ReadAffinity(n, false)),
            ("maglev", n => NatMaps.ReadMaglev(n, false)),
            ("routes", n => RouteMap.Read(n, false)),
            ("ipsets", n => IpSetMap.Read(n, false)),
            ("arp", n => ArpMap.Read(n, false)),
            ("counters", n => CounterReader.Read(n)),
            ("maps", n => MapInventory.List(n)),
        };
        foreach ((string family, Func<INodeDataplane, IEnumerable<object>> read) in readers)
        {
            List<object> off = read(offline).ToList();
            Assert.True(off.Count > 0, family + " has entries to compare");
            Assert.Equal(Json(read(live), moving), Json(off, moving));
            Assert.Equal(TypedJson(zip, "b1", family), Json(off));
        }

        // One moment: every age offline is from the clock of the capture, the same on every read.
        Assert.Equal(Json(ConntrackReader.Read(offline, new ConntrackQuery())), Json(ConntrackReader.Read(offline, new ConntrackQuery())));
        Assert.Equal(300 + 40 + 5 + 2 * (12 + 4), ConntrackReader.Read(offline, new ConntrackQuery()).Count());
        BundleNodeEntry entry = bundle.Manifest.Nodes.Single();
        Assert.Equal(("Complete", "Local"), (entry.Status, bundle.Manifest.Kind));
        Assert.Equal(377, entry.Families.Single(f => f.Family == "conntrack").Objects);
    }

    [Fact]
    public void A_failure_is_answered_offline_as_it_was_and_what_was_not_asked_is_said()
    {
        var live = new VectorDataplane(release: "v3.30.7").Map("cali_v4_arp2", BpfMapType.Hash, 8, 12)
            .Add("cali_v4_arp2", new byte[8] { 172, 18, 0, 11, 1, 0, 0, 0 }, new byte[12]);
        string zip = Export(live);
        using BundleCluster bundle = BundleCluster.Open(zip);
        using BundleNode offline = bundle.OpenNode("calico-ut", null);

        BpfObjectNotFoundException liveError = Assert.Throws<BpfObjectNotFoundException>(() => ConntrackReader.Read(live, new ConntrackQuery()).ToList());
        BpfObjectNotFoundException offError = Assert.Throws<BpfObjectNotFoundException>(() => ConntrackReader.Read(offline, new ConntrackQuery()).ToList());
        Assert.Equal(liveError.Message, offError.Message);
        Assert.Single(ArpMap.Read(offline, false));
        Assert.Equal(live.GivenRelease, offline.GivenRelease);

        // The policy directory was listed (absent): its files did not exist either. Another path was never asked.
        Assert.Null(offline.ListDirectory(PolicyDebug.DefaultDirectory));
        Assert.Null(offline.ReadTextFile(PolicyDebug.DefaultDirectory + "/eth0_igr.json"));
        BundleException never = Assert.Throws<BundleException>(() => offline.ReadTextFile("/etc/hostname"));
        Assert.Contains("not asked when the bundle was made", never.Message);
        Assert.Throws<BundleException>(() => offline.OpenMapForWrite("cali_v4_arp2"));
        Assert.Throws<BundleException>(() => offline.MeasurePrograms(new uint[] { 1 }, TimeSpan.FromSeconds(1), CancellationToken.None));
        BundleException noCluster = Assert.Throws<BundleException>(() => bundle.ListNodes(CancellationToken.None));
        Assert.Contains("without a cluster", noCluster.Message);
    }

    [Fact]
    public void The_size_bound_leaves_out_typed_json_first_then_whole_maps_never_part_of_one()
    {
        var live = new VectorDataplane(release: "v3.30.7").Map("cali_v4_arp2", BpfMapType.Hash, 8, 12);
        var random = new Random(7);
        for (int i = 0; i < 20_000; i++)
        {
            var key = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(key, 0x0a000000 + i);
            key[4] = 1;
            var value = new byte[12];
            random.NextBytes(value); // random MACs: they do not compress
            live.Add("cali_v4_arp2", key, value);
        }

        // Enough for the raw entries (about 400 KB) and the facts, not for the typed JSON as well.
        string fits = Export(live, 600 << 10, "fits.zip");
        using (BundleCluster bundle = BundleCluster.Open(fits))
        {
            BundleNodeEntry node = bundle.Manifest.Nodes.Single();
            Assert.Equal("Complete", node.Status);
            BundleFamilyEntry arp = node.Families.Single(f => f.Family == "arp");
            Assert.Equal((20_000L, false), (arp.Objects, arp.Json));
            Assert.Contains("size bound", arp.JsonOmitted);
            using BundleNode offline = bundle.OpenNode("calico-ut", null);
            Assert.Equal(20_000, ArpMap.Read(offline, false).Count());
        }

        // Too small for the map: it is left out whole, and reading it says so.
        string tight = Export(live, 64 << 10, "tight.zip");
        using (BundleCluster bundle = BundleCluster.Open(tight))
        {
            BundleNodeEntry node = bundle.Manifest.Nodes.Single();
            Assert.Equal("Partial", node.Status);
            Assert.Contains(node.Omitted, o => o.StartsWith("cali_v4_arp2: ", StringComparison.Ordinal));
            using BundleNode offline = bundle.OpenNode("calico-ut", null);
            BundleException e = Assert.Throws<BundleException>(() => ArpMap.Read(offline, false).ToList());
            Assert.Contains("left out of the bundle", e.Message);
            Assert.Contains("-MaxSize", e.Message);
            Assert.True(new FileInfo(tight).Length < (64 << 10) + (16 << 10));
        }

        Assert.Empty(Directory.GetDirectories(_dir, ".*parts-*"));
        Assert.Empty(Directory.GetFiles(_dir, "*.partial"));
    }

    /// <summary>A stored entries file as the export writes it: each key, then its value, gzip'd.</summary>
    private static byte[] StoredEntries(int count, int keySize, int stride, int keep = int.MaxValue)
    {
        var raw = new MemoryStream();
        using (var gz = new GZipStream(raw, CompressionLevel.Fastest, leaveOpen: true))
        {
            for (int i = 0; i < Math.Min(count, keep); i++)
            {
                var key = new byte[keySize];
                BinaryPrimitives.WriteInt32LittleEndian(key, i);
                var value = new byte[stride];
                BinaryPrimitives.WriteInt32BigEndian(value.AsSpan(stride - 4), ~i);
                value[0] = (byte)i;
                gz.Write(key);
                gz.Write(value);
            }
        }

        return raw.ToArray();
    }

    private static Stream Gunzip(byte[] file) => new GZipStream(new MemoryStream(file), CompressionMode.Decompress);

    private static MapFact StoredFact(long entries, int keySize, int stride) => new()
    {
        Descriptor = new BpfMapDescriptor(7, BpfMapType.LruHash, keySize, stride, 512000, 0, "cali_v4_ct4"),
        Cpus = 1,
        ValueStride = stride,
        Entries = entries,
    };

    [Fact]
    public void A_stored_map_is_read_back_entry_for_entry_across_reads_and_batches()
    {
        // 9,001 entries of conntrack's sizes: two 64 KiB reads (630 entries) in each 1,024-entry batch, and a short last batch.
        const int count = 9001, keySize = 16, stride = 88;
        byte[] file = StoredEntries(count, keySize, stride);
        var reader = new StoredMapReader(StoredFact(count, keySize, stride), () => Gunzip(file), "The entries of cali_v4_ct4 on b1");
        int seen = 0;
        var sizes = new List<int>();
        foreach (RawEntryBatch batch in reader.ReadEntries(CancellationToken.None))
        {
            sizes.Add(batch.Count);
            for (int i = 0; i < batch.Count; i++, seen++)
            {
                Assert.Equal(seen, BinaryPrimitives.ReadInt32LittleEndian(batch.Key(i)));
                ReadOnlySpan<byte> v = batch.Value(i);
                Assert.Equal((byte)seen, v[0]);
                Assert.Equal(~seen, BinaryPrimitives.ReadInt32BigEndian(v[(stride - 4)..]));
            }
        }

        Assert.Equal(count, seen);
        Assert.Equal(Enumerable.Repeat(1024, 8).Append(809), sizes);
    }

    [Fact]
    public void A_stored_map_cut_short_or_damaged_is_an_error_that_names_it()
    {
        const int keySize = 16, stride = 88;
        var fact = StoredFact(5000, keySize, stride);
        byte[] shortFile = StoredEntries(5000, keySize, stride, keep: 4500);
        var cut = new StoredMapReader(fact, () => Gunzip(shortFile), "The entries of cali_v4_ct4 on b1 in /tmp/b.zip");
        var ex = Assert.Throws<BundleException>(() => cut.ReadEntries(CancellationToken.None).Sum(b => b.Count));
        Assert.Equal("The entries of cali_v4_ct4 on b1 in /tmp/b.zip end before the 5000 entries the bundle recorded: the bundle was cut short or damaged. Make it again with Export-CalicoBpfDiagnostic.", ex.Message);

        byte[] damaged = StoredEntries(5000, keySize, stride);
        Array.Fill(damaged, (byte)0xA5, 10, damaged.Length - 10);
        var bad = new StoredMapReader(fact, () => Gunzip(damaged), "The entries of cali_v4_ct4 on b1 in /tmp/b.zip");
        ex = Assert.Throws<BundleException>(() => bad.ReadEntries(CancellationToken.None).Sum(b => b.Count));
        Assert.StartsWith("The entries of cali_v4_ct4 on b1 in /tmp/b.zip ", ex.Message);
        Assert.EndsWith("Make it again with Export-CalicoBpfDiagnostic.", ex.Message);
    }

    [Fact]
    public void Every_node_thread_reads_its_own_entries_through_the_one_handle_at_once()
    {
        // Eight stored gzip entries (as map entries are kept) and eight deflated JSON entries, read by
        // sixteen threads at once in reads of odd sizes: each gets its own bytes, none another's.
        string path = Path.Combine(_dir, "shared.zip");
        var expected = new Dictionary<string, byte[]>();
        using (ZipArchive zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using (var w = new StreamWriter(zip.CreateEntry(BundleFormat.Manifest).Open()))
            {
                w.Write($$"""{"Format":"{{BundleFormat.Format}}","ModuleVersion":"0.0-test","Nodes":[]}""");
            }

            for (int n = 0; n < 8; n++)
            {
                var content = new byte[1_500_000 + n * 7919];
                new Random(n).NextBytes(content);
                expected[$"nodes/n{n}/maps/m.bin.gz"] = content;
                using (var gz = new GZipStream(zip.CreateEntry($"nodes/n{n}/maps/m.bin.gz", CompressionLevel.NoCompression).Open(), CompressionLevel.Fastest))
                {
                    gz.Write(content);
                }

                using var j = new StreamWriter(zip.CreateEntry($"nodes/n{n}/facts.json", CompressionLevel.Optimal).Open());
                j.Write(JsonSerializer.Serialize(Enumerable.Range(0, 20_000).Select(i => i * (n + 1)).ToArray()));
            }
        }

        using BundleArchive archive = BundleArchive.Open(path);
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        void Read(int t)
        {
            int n = t % 8;
            if (t < 8)
            {
                using Stream s = archive.OpenGzip($"nodes/n{n}/maps/m.bin.gz");
                var got = new MemoryStream();
                var buffer = new byte[8191];
                var sizes = new Random(t);
                int r;
                while ((r = s.Read(buffer, 0, sizes.Next(1, buffer.Length))) > 0)
                {
                    got.Write(buffer, 0, r);
                }

                if (!got.ToArray().AsSpan().SequenceEqual(expected[$"nodes/n{n}/maps/m.bin.gz"]))
                {
                    failures.Add($"node {n}'s map entries");
                }
            }
            else
            {
                for (int k = 0; k < 5; k++)
                {
                    int[] got = archive.ReadJson<int[]>($"nodes/n{n}/facts.json");
                    if (got.Length != 20_000 || got[19_999] != 19_999 * (n + 1))
                    {
                        failures.Add($"node {n}'s facts");
                    }
                }
            }
        }

        var threads = Enumerable.Range(0, 16).Select(t => new Thread(() =>
        {
            try
            {
                Read(t);
            }
            catch (Exception ex)
            {
                failures.Add($"thread {t}: {ex.GetType().Name}: {ex.Message}");
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Empty(failures);
    }

    [Fact]
    public void A_bundle_of_a_later_format_or_no_bundle_at_all_is_refused_by_name()
    {
        string later = Path.Combine(_dir, "later.zip");
        using (ZipArchive zip = ZipFile.Open(later, ZipArchiveMode.Create))
        {
            using var w = new StreamWriter(zip.CreateEntry("manifest.json").Open());
            w.Write("""{"Format":"calicobpf-bundle/9","ModuleVersion":"9.0.0","Nodes":[]}""");
        }

        Assert.Contains("format calicobpf-bundle/9 (made by CalicoBpf 9.0.0)", Assert.Throws<BundleException>(() => BundleCluster.Open(later)).Message);
        string text = Path.Combine(_dir, "text.zip");
        File.WriteAllText(text, "not a zip");
        Assert.Contains("not a zip file", Assert.Throws<BundleException>(() => BundleCluster.Open(text)).Message);
        Assert.Throws<FileNotFoundException>(() => BundleCluster.Open(Path.Combine(_dir, "none.zip")));
    }

    [Fact]
    public void Secrets_are_redacted_wherever_a_resource_carries_them()
    {
        var pod = JsonNode.Parse("""
            {"metadata":{"name":"calico-node-x","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"password\":\"p\"}","keep":"1"},"managedFields":[{}]},
             "spec":{"containers":[{"name":"calico-node","env":[{"name":"CALICO_DATASTORE_PASSWORD","value":"s3cret"},{"name":"FELIX_BPFENABLED","value":"true"},
               {"name":"ETCD_KEY_FILE","value":"/calico-secrets/etcd-key"},{"name":"AWS_SECRET_ACCESS_KEY","value":"abc"},{"name":"FROM_SECRET","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]}]}}
            """)!.AsObject();
        JsonObject kept = Redaction.Resource(pod)!;
        string text = kept.ToJsonString();
        Assert.DoesNotContain("s3cret", text);
        Assert.DoesNotContain("abc", text);
        Assert.DoesNotContain("last-applied", text);
        Assert.DoesNotContain("managedFields", text);
        Assert.Contains("\"FELIX_BPFENABLED\",\"value\":\"true\"", text);
        Assert.Contains("secretKeyRef", text); // a reference is not a secret
        Assert.Contains("s3cret", pod.ToJsonString()); // the answer itself is untouched

        Assert.Equal(Redaction.Redacted, Redaction.EnvironmentValue("KUBE_TOKEN", "t"));
        Assert.Equal("true", Redaction.EnvironmentValue("FELIX_BPFENABLED", "true"));
        Assert.Null(Redaction.EnvironmentValue("ANY_PASSWORD", null));
        Assert.Equal("GET /api Authorization: " + Redaction.Redacted, Redaction.Line("GET /api Authorization: Bearer-abc"));
        Assert.Equal("login with password=" + Redaction.Redacted + " done", Redaction.Line("login with password=hunter2 done"));
        Assert.Equal("Authorization: Bearer " + Redaction.Redacted, Redaction.Line("Authorization: Bearer eyJhbGciOi.abc"));
        Assert.Equal("{\"password\":\"" + Redaction.Redacted + "\",\"user\":\"u\"}", Redaction.Line("{\"password\":\"s3\",\"user\":\"u\"}"));
        Assert.Equal("api_key=" + Redaction.Redacted, Redaction.Line("api_key=abcdef"));
        Assert.True(Redaction.IsSecretResource(new Cluster.ResourceRef(string.Empty, "v1", "secrets", "x")));
    }

    /// <summary>A node with no maps and a trace buffer of lines.</summary>
    private sealed class TracingNode : ReadOnlyNode
    {
        public override string Node => "trace1";

        public override IReadOnlyList<CalicoMapName> ListMaps() => Array.Empty<CalicoMapName>();

        public override IMapReader OpenMap(string pinName) => throw NotPinned(pinName);

        public override IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken) =>
            new[] { "  <idle>-0  [000] d.s.. 100.000001: bpf_trace_printk: eth0-----------I: New packet at ifindex=2; mark=0", "a token=t0k3n here" };
    }

    [Fact]
    public void Trace_lines_are_kept_as_asked_none_included_and_redacted()
    {
        foreach (int keep in new[] { 0, 1, 10 })
        {
            string path = Path.Combine(_dir, $"trace{keep}.zip");
            using (var export = new DiagnosticExport(path, null, new ExportOptions { TraceLines = keep }, "0.0-test"))
            {
                export.CaptureNode("trace1", null, () => new TracingNode(), NullReporter.Instance, CancellationToken.None);
                export.WriteFacts();
                export.Complete(CancellationToken.None);
            }

            using BundleCluster bundle = BundleCluster.Open(path);
            using BundleNode offline = bundle.OpenNode("trace1", null);
            List<string> lines = offline.ReadTraceLines(false, null, CancellationToken.None).ToList();
            Assert.Equal(Math.Min(keep, 2), lines.Count);
            if (keep > 1)
            {
                Assert.Equal("a token=" + Redaction.Redacted + " here", lines[1]);
            }
        }
    }

    [Fact]
    public void A_trace_left_out_for_size_is_read_live_during_the_export_and_is_an_error_offline()
    {
        // Review M4: a trace buffer (or log) dropped for -MaxSize replayed as empty, so checks passed offline.
        string tracing = Path.Combine(_dir, "tracing");
        Directory.CreateDirectory(tracing);
        var random = new Random(7);
        File.WriteAllLines(Path.Combine(tracing, "trace"), Enumerable.Range(0, 20_000).Select(i =>
        {
            byte[] noise = new byte[24];
            random.NextBytes(noise);
            return $"  x-{i} [000] .... {i}.000: bpf_trace_printk: {Convert.ToHexString(noise)}";
        }));
        string zip = Path.Combine(_dir, "trace.zip");
        using var writer = new BundleWriter(zip, 256 * 1024);
        var live = new LocalDataplane(null, "t1");
        var node = new RecordingNode("t1", () => live, writer, 100_000);

        Assert.Equal(20_000, node.ReadTraceLines(false, tracing, CancellationToken.None).Count());
        TraceFact fact = node.Facts.Trace[tracing].Value!;
        Assert.NotNull(fact.Omitted);
        BundleException e = Assert.Throws<BundleException>(() => BundleNode.StoredTrace(() => Stream.Null, fact, CancellationToken.None).ToList());
        Assert.Contains("left out of the bundle", e.Message);
        Assert.Contains("-MaxSize", e.Message);
    }
}
