namespace CalicoBpf.Tests;

/// <summary>
/// The transport of remote nodes (bpftool, ip, tc, cat, sh) against the local one (bpf(2), rtnetlink)
/// on the same real maps: every object must come out equal, field for field.
/// </summary>
public sealed class CommandTransportTests
{
    internal static void RequireTools()
    {
        Kernel.Require();
        bool have = File.Exists("/usr/sbin/bpftool") || File.Exists("/usr/bin/bpftool");
        if (!have && Kernel.InCi)
        {
            throw new InvalidOperationException("bpftool is needed (.ci/run installs it).");
        }

        Skip.IfNot(have, "bpftool is not installed");
    }

    internal static string Fields<T>(T item, params string[] skip) =>
        string.Join("|", typeof(T).GetProperties().Where(p => !skip.Contains(p.Name)).OrderBy(p => p.Name)
            .Select(p => p.Name + "=" + Show(p.GetValue(item))));

    private static string Show(object? v) => v switch
    {
        null => "null",
        byte[] b => Convert.ToHexString(b),
        string s => s,
        System.Collections.IEnumerable e => "[" + string.Join(",", e.Cast<object?>().Select(Show)) + "]",
        _ => v.ToString() ?? string.Empty,
    };

    [SkippableFact]
    public void Every_reader_gives_the_same_objects_over_bpftool_as_over_bpf_syscalls()
    {
        RequireTools();
        using var fs = new BpfFsScope();
        string policy = Directory.CreateTempSubdirectory("calicobpf-policy").FullName;
        try
        {
            using (var sim = SimulatedDataplane.Claim(fs.PinDirectory))
            {
                NodeScenario.Parse("""
                    conntrack: { tcp: 40, udp: 10, icmp: 3, services: 12, nodePorts: 4 }
                    interfaces:
                      - name: lo
                        ingress: { TotalPackets: 100, DroppedByPolicy: 5 }
                        xdp: { TotalPackets: 7 }
                    services:
                      - { id: 1, address: 10.96.0.10, port: 53, protocol: UDP, backends: [10.65.0.5:53], missingBackends: 1 }
                      - { id: 2, address: 10.96.0.20, port: 80, protocol: TCP, backends: [10.65.0.8:8080], affinitySeconds: 60, maglevSlots: 5 }
                    routes:
                      - { cidr: 10.65.0.0/16, type: remote workload in-pool, nextHop: 172.18.0.99 }
                      - { cidr: 10.65.0.7/32, type: local workload in-pool, interface: lo }
                    ipSets:
                      - { id: "0x07", members: [10.65.0.5/32, 10.65.0.4:8080/TCP] }
                    arp:
                      - { address: 172.18.0.11, interface: lo, sourceMac: "66:e2:1f:00:0a:01", destinationMac: "66:e2:1f:00:0b:02" }
                    policies:
                      - interface: lo
                        hook: ingress
                        tiers: [ { name: default, policies: [ { name: p, rules: [ { action: allow, matchId: 5, hits: 9 } ] } ] } ]
                    """).Seed(sim, new Dictionary<string, int> { ["lo"] = 1 }, policy);
            }

            var local = new LocalDataplane(fs.PinDirectory, "n1");
            var remote = new CommandDataplane(new LocalCommandRunner("n1"), fs.PinDirectory);

            Assert.Equal(local.ListMaps().Select(m => m.PinName), remote.ListMaps().Select(m => m.PinName));
            Assert.Equal(
                MapInventory.List(local).Select(m => Fields(m)),
                MapInventory.List(remote).Select(m => Fields(m)));

            // Describing every map costs two round trips to the node (probe, bpftool -f map show), not
            // one per map; counting their entries one more (every dump in one exec).
            var counting = new CountingRunner(new LocalCommandRunner("n1"));
            Assert.Equal(local.ListMaps().Count, MapInventory.List(new CommandDataplane(counting, fs.PinDirectory), countEntries: false).Count());
            Assert.Equal(2, counting.Starts);
            counting = new CountingRunner(new LocalCommandRunner("n1"));
            Assert.Equal(MapInventory.List(local).Select(m => Fields(m)), MapInventory.List(new CommandDataplane(counting, fs.PinDirectory)).Select(m => Fields(m)));
            Assert.Equal(3, counting.Starts);

            // Reading a map's entries on a fresh node is one exec: the probe (pins, CPUs, links, clocks)
            // then the description and dump of the live pin the shell picked, as the catalog does.
            counting = new CountingRunner(new LocalCommandRunner("n1"));
            using (var fresh = new CommandDataplane(counting, fs.PinDirectory))
            {
                Assert.Equal(CounterReader.Read(local).Select(c => Fields(c)), CounterReader.Read(fresh).Select(c => Fields(c)));
            }

            Assert.Equal(1, counting.Starts);
            counting = new CountingRunner(new LocalCommandRunner("n1"));
            using (var fresh = new CommandDataplane(counting, fs.PinDirectory))
            {
                Assert.Equal(ConntrackReader.Read(local, new ConntrackQuery()).Count(), ConntrackReader.Read(fresh, new ConntrackQuery()).Count());
            }

            Assert.Equal(1, counting.Starts);

            // A reader that asks for a family the node lacks still gets the plain not-found error, and the
            // probe it shared an exec with is whole.
            using (var fresh = new CommandDataplane(new LocalCommandRunner("n1"), fs.PinDirectory))
            {
                Assert.Throws<Interop.BpfObjectNotFoundException>(() => NatMaps.ReadAffinity(fresh, true).ToList());
                Assert.Equal(local.ListMaps().Count, fresh.ListMaps().Count);
                Assert.Equal(Interop.KernelInfo.PossibleCpuCount, fresh.PossibleCpus);
            }

            // Ages and wall times depend on when each transport sampled the clock; everything else must match.
            string[] clockFields = { "Age", "LastSeen", "ResetSeen", "Created" };
            Assert.Equal(
                ConntrackReader.Read(local, new ConntrackQuery()).Select(e => Fields(e, clockFields)).OrderBy(x => x),
                ConntrackReader.Read(remote, new ConntrackQuery()).Select(e => Fields(e, clockFields)).OrderBy(x => x));
            Assert.Equal(CounterReader.Read(local).Select(c => Fields(c)), CounterReader.Read(remote).Select(c => Fields(c)));
            Assert.Equal(NatMaps.ReadFrontends(local, new NatQuery()).Select(f => Fields(f)).OrderBy(x => x),
                NatMaps.ReadFrontends(remote, new NatQuery()).Select(f => Fields(f)).OrderBy(x => x));
            Assert.Equal(NatMaps.ReadMaglev(local, false).Select(m => Fields(m)).OrderBy(x => x), NatMaps.ReadMaglev(remote, false).Select(m => Fields(m)).OrderBy(x => x));
            Assert.Equal(NatMaps.ReadAffinity(local, false).Select(a => Fields(a, "Age", "LastRefreshed")),
                NatMaps.ReadAffinity(remote, false).Select(a => Fields(a, "Age", "LastRefreshed")));
            Assert.Equal(RouteMap.Read(local, false).Select(r => Fields(r)), RouteMap.Read(remote, false).Select(r => Fields(r)));
            Assert.Equal(IpSetMap.Read(local, false).Select(m => Fields(m)), IpSetMap.Read(remote, false).Select(m => Fields(m)));
            Assert.Equal(ArpMap.Read(local, false).Select(a => Fields(a)), ArpMap.Read(remote, false).Select(a => Fields(a)));
            Assert.Equal(InterfaceStateMap.Read(local).Select(s => Fields(s)), InterfaceStateMap.Read(remote).Select(s => Fields(s)));
            Assert.Equal(PolicyDebug.ReadHitCounts(local, null, default), PolicyDebug.ReadHitCounts(remote, null, default));

            // The node's clock as the remote transport samples it agrees with the local one.
            var lc = local.SampleClock();
            var rc = remote.SampleClock();
            Assert.InRange((double)rc.MonotonicNanoseconds - lc.MonotonicNanoseconds, 0, 5e9);
            Assert.InRange((rc.UtcNow - lc.UtcNow).TotalSeconds, -1, 5);

            // So does the trace buffer's clock's lead over it (where this machine has tracefs): the same
            // "now ts", read in one exec between two readings of /proc/timer_list.
            if (Interop.TraceFs.FindTracingDirectory() is { } tracing)
            {
                long? lo = local.TraceClockOffset(tracing, default), ro = remote.TraceClockOffset(tracing, default);
                Assert.NotNull(lo);
                Assert.NotNull(ro);
                Assert.InRange(ro!.Value - lo!.Value, -50_000_000L, 50_000_000L);
            }
        }
        finally
        {
            Directory.Delete(policy, recursive: true);
        }
    }

    [SkippableFact]
    public void Links_and_qdiscs_over_ip_and_tc_equal_rtnetlink()
    {
        RequireTools();
        using var ns = new NetnsScope();
        ns.Ip("link", "add", "cbt0", "type", "veth", "peer", "name", "cbt1");
        ns.Exec("tc", "qdisc", "add", "dev", "cbt0", "clsact");
        var local = Interop.NetworkNamespace.Run(ns.Name, () => (Links: Interop.NetLink.ListLinks(), Qdiscs: new LocalDataplane(null, "n").ListQdiscs()));
        var remote = new CommandDataplane(new NetnsRunner(ns.Name, "n"));
        Assert.Equal(local.Links.OrderBy(l => l.Key).Select(l => l.Value), remote.ListLinks().OrderBy(l => l.Key).Select(l => l.Value));
        Assert.Equal(local.Qdiscs.Select(q => Fields(q)).OrderBy(x => x), remote.ListQdiscs().Select(q => Fields(q)).OrderBy(x => x));
    }

    [SkippableFact]
    public void Missing_pins_and_tools_are_clear_errors()
    {
        RequireTools();
        using var fs = new BpfFsScope();
        var remote = new CommandDataplane(new LocalCommandRunner("n1"), fs.PinDirectory);
        Assert.Equal(Interop.BpfEnvironmentProblem.NoCalicoMaps, Assert.Throws<Interop.BpfEnvironmentException>(() => remote.ListMaps()).Problem);
        Assert.Throws<Interop.BpfObjectNotFoundException>(() => remote.OpenMap("cali_v4_ct4"));
        var missing = Assert.Throws<Interop.BpfObjectNotFoundException>(() => remote.OpenMapToDump("cali_v4_ct4"));
        Assert.Contains("cali_v4_ct4 is not pinned on n1", missing.Message);
        var noTool = Assert.Throws<NodeCommandException>(() => new LocalCommandRunner("n1").Start(new[] { "no-such-tool-here" }, default));
        Assert.Equal(127, noTool.ExitCode);
        Assert.Contains("not installed", noTool.Message);
    }

    /// <summary>Runs commands inside a test network namespace, as exec runs them inside calico-node.</summary>
    [SkippableFact]
    public void Connect_time_programs_through_bpftool_equal_the_local_ones()
    {
        RequireTools();
        using var scope = new CgroupScope();
        string cgroup = scope.Cgroup, links = scope.Links;
        scope.Attach(CgroupAttachType.SendMsg4, "calico_sendmsg_", "calico_sendmsg_v4");
        scope.Attach(CgroupAttachType.Connect4, "calico_connect_", "calico_connect_v4");
        scope.Attach(CgroupAttachType.Connect6, "other_connect6", "other_connect6");
        // A second pin of Calico's connect4 link, with a name that is not Calico's and sorts first:
        // the program is still Calico's, held by its Calico pin, on both transports.
        uint link = BpfPrograms.DescribeLink(Path.Combine(links, "calico_connect_v4")).LinkId;
        Shell.Run("bpftool", "link", "pin", "id", link.ToString(System.Globalization.CultureInfo.InvariantCulture), Path.Combine(links, "another_pin"));

        var remote = new CommandDataplane(new LocalCommandRunner("t1"));
        var local = new LocalDataplane();
        foreach (bool calicoOnly in new[] { true, false })
        {
            IReadOnlyList<ConnectTimeProgram> theirs = ConnectTime.Programs(remote, cgroup, links, calicoOnly);
            IReadOnlyList<ConnectTimeProgram> ours = ConnectTime.Programs(local, cgroup, links, calicoOnly);
            Assert.Equal(calicoOnly ? 2 : 3, theirs.Count);
            Assert.Equal(ours.Select(p => Fields(p, "Node", "Loaded")), theirs.Select(p => Fields(p, "Node", "Loaded")));
            Assert.All(ours.Zip(theirs), pair => Assert.InRange(Math.Abs((pair.First.Loaded!.Value - pair.Second.Loaded!.Value).TotalSeconds), 0, 1));
        }

        // The hooks come in the kernel's order, whatever order they were attached in; a pin
        // that is not Calico's does not make its program Calico's.
        IReadOnlyList<ConnectTimeProgram> all = ConnectTime.Programs(remote, cgroup, links, calicoOnly: false);
        Assert.Equal(new[] { CgroupAttachType.Connect4, CgroupAttachType.Connect6, CgroupAttachType.SendMsg4 }, all.Select(p => p.AttachType));
        Assert.False(all[1].IsCalico);
        Assert.Null(all[1].LinkPath);
        Assert.Equal(Path.Combine(links, "calico_connect_v4"), all[0].LinkPath);

        var missing = Assert.Throws<BpfEnvironmentException>(() => ConnectTime.Programs(remote, cgroup + "-missing", links, true));
        Assert.Contains("does not exist on node t1", missing.Message);
    }

    [SkippableFact]
    public void Connect_time_removal_through_bpftool_plans_as_the_local_one_and_detaches()
    {
        RequireTools();
        using var scope = new CgroupScope();
        scope.Attach(CgroupAttachType.Connect4, "calico_connect_", "calico_connect_v4");
        scope.Attach(CgroupAttachType.Connect6, "other_connect6", "other_connect6");
        using (BpfMap array = scope.Fs.CreatePinned(BpfMapType.ProgramArray, 4, 4, 1, "cali_ctlb_send")) { }
        using (BpfMap stale = BpfMap.Create(BpfMapType.Array, 4, 4, 1, "cali_stale"))
        {
            stale.Pin(Path.Combine(scope.Links, "cali_stale"));   // a Calico pin that is no link: only unpinned
        }

        var remote = new CommandDataplane(new LocalCommandRunner("t1"), scope.Fs.PinDirectory);
        var local = new LocalDataplane(scope.Fs.PinDirectory);

        var plan = ConnectTime.Plan(remote, scope.Links);
        var localPlan = ConnectTime.Plan(local, scope.Links);
        Assert.Equal(localPlan.ProgramArrays, plan.ProgramArrays);
        Assert.Equal(localPlan.Links, plan.Links);
        Assert.Equal(new[] { Path.Combine(scope.Fs.PinDirectory, "cali_ctlb_send") }, plan.ProgramArrays);
        Assert.Equal(new[] { "cali_stale", "calico_connect_v4" }, plan.Links.Select(Path.GetFileName));

        remote.RemoveConnectTimeProgramArray(plan.ProgramArrays[0]);
        foreach (string link in plan.Links)
        {
            remote.RemoveConnectTimeLink(link);
        }

        Assert.Empty(BpfPrograms.QueryCgroup(scope.Cgroup, (uint)CgroupAttachType.Connect4));
        Assert.Single(BpfPrograms.QueryCgroup(scope.Cgroup, (uint)CgroupAttachType.Connect6));   // not Calico's: stays
        var after = ConnectTime.Plan(remote, scope.Links);
        Assert.Empty(after.ProgramArrays);
        Assert.Empty(after.Links);
        Assert.False(File.Exists(Path.Combine(scope.Links, "calico_connect_v4")));
    }

    [Theory]
    [InlineData("cali_v4_ct", "cali_v4_ct3", "cali_v4_ct4", "cali_v4_ct_nats", "cali_v4_ct4_old", "cali_v4_ct5_old")]
    [InlineData("cali_v4_ct", "cali_v4_ct_nats")]
    [InlineData("cali_v4_ct_nats", "cali_v4_ct2x", "cali_v4_ct1000")]
    [InlineData("cali_v4_ct9", "cali_v4_ct10", "cali_v4_ct100")]
    [InlineData("cali_counters", "cali_counters6", "cali_counters_old")]
    [InlineData("cali_v4_nat_fe3", "cali_v4_nat_be", "cali_v4_nat_fe")]
    public void The_shell_guesses_the_pin_the_catalogue_picks(params string[] pins)
    {
        // The probe's exec starts the dump of the pin the shell guesses; the catalogue decides what is
        // read. Where they differ the dump is wasted, so the guess follows the catalogue's rule.
        DirectoryInfo dir = Directory.CreateTempSubdirectory("calicobpf-newest-");
        try
        {
            foreach (string pin in pins)
            {
                File.WriteAllBytes(Path.Combine(dir.FullName, pin), Array.Empty<byte>());
            }

            IReadOnlyList<CalicoMapName> listed = MapCatalog.ListPins(dir.FullName);
            foreach (string baseName in new[] { MapCatalog.ConntrackV4, MapCatalog.Counters, "cali_v4_nat_fe", "cali_v4_nat_be", "cali_v4_ct_nats" })
            {
                string guess = Shell.Run("sh", "-c", CommandDataplane.NewestPinGuess + "printf %s \"${best##*/}\"", "guess", dir.FullName, baseName);
                Assert.Equal(MapCatalog.FindLatest(listed, baseName)?.PinName ?? string.Empty, guess);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_default_cgroup_is_decided_once_for_every_transport()
    {
        // CALICO_CGROUP_PATH of calico-node's environment wins; without it both transports give the
        // same answer from the node's facts (/run/calico/cgroup, else the first cgroup2 mount).
        var told = new CommandDataplane(new LocalCommandRunner("t1", new Dictionary<string, string> { ["CALICO_CGROUP_PATH"] = "/run/elsewhere" }));
        Assert.Equal("/run/elsewhere", ConnectTime.DefaultCgroup(told));
        if (Environment.GetEnvironmentVariable("CALICO_CGROUP_PATH") is null && ConnectTime.Cgroup2Mount() is not null)
        {
            Assert.Equal(ConnectTime.DefaultCgroup(new LocalDataplane()), ConnectTime.DefaultCgroup(new CommandDataplane(new LocalCommandRunner("t1"))));
        }

        Assert.Equal("/sys/fs/cgroup", ConnectTime.Cgroup2Mount("proc /proc proc rw 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\ncgroup2 /run/calico/cgroup cgroup2 rw 0 0\n"));
        Assert.Null(ConnectTime.Cgroup2Mount("proc /proc proc rw 0 0\n"));
    }

    [Fact]
    public void Connect_time_removal_plan_through_the_shell_knows_every_program_array()
    {
        // The plan takes the names of ConnectTime.ProgramArrays from the node's listing; a pin of each is planned, in that order.
        DirectoryInfo pins = Directory.CreateTempSubdirectory("calicobpf-ctlb-");
        try
        {
            foreach (string name in ConnectTime.ProgramArrays.Reverse())
            {
                File.WriteAllBytes(Path.Combine(pins.FullName, name), Array.Empty<byte>());
            }

            var remote = new CommandDataplane(new LocalCommandRunner("t1"), pins.FullName);
            var plan = ConnectTime.Plan(remote, Path.Combine(pins.FullName, "no-links"));
            Assert.Equal(ConnectTime.ProgramArrays.Select(n => pins.FullName + "/" + n), plan.ProgramArrays);
            Assert.Empty(plan.Links);
        }
        finally
        {
            pins.Delete(recursive: true);
        }
    }

    /// <summary>
    /// bpftool 5.3, as the calico-node image of v3.25 to v3.28.0 ships it (reference
    /// calico-node-image.md): the host's bpftool stands in and refuses the link object, which came with
    /// Linux 5.8's bpftool, the way bpftool refuses an object it does not know (its usage, exit 255).
    /// </summary>
    internal sealed class Bpftool53 : IDisposable
    {
        public Bpftool53()
        {
            string real = Shell.Run("sh", "-c", "command -v bpftool").Trim();
            Directory.CreateDirectory(Dir);
            string usage = "Usage: bpftool [OPTIONS] OBJECT { COMMAND | help }\n       bpftool batch file FILE\n       bpftool version\n\n" +
                "       OBJECT := { prog | map | cgroup | perf | net | feature | btf }";
            File.WriteAllText(Path.Combine(Dir, "bpftool"),
                "#!/bin/sh\n" +
                "obj=; for a in \"$@\"; do case \"$a\" in -*) ;; *) obj=$a; break;; esac; done\n" +
                $"case \"$obj\" in l|li|lin|link) printf '{usage}\\n' >&2; exit 255;; help|'') printf '{usage}\\n' >&2; exit 0;; esac\n" +
                // bpftool 5.3's version is the kernel tree's (tools/bpf/bpftool/main.c do_version).
                "case \"$obj\" in v|ve|ver|vers|versi|versio|version) case \" $* \" in *' -j '*|*' --json '*) echo '{\"version\":\"5.3.0\"}';; *) echo 'bpftool v5.3.0';; esac; exit 0;; esac\n" +
                $"exec {real} \"$@\"\n");
            Shell.Run("chmod", "700", Path.Combine(Dir, "bpftool"));
            Runner = new LocalCommandRunner("t53", new Dictionary<string, string> { ["PATH"] = Dir + ":" + Environment.GetEnvironmentVariable("PATH") });
        }

        public string Dir { get; } = Path.Combine(Path.GetTempPath(), "cbpf-bpftool53-" + Guid.NewGuid().ToString("N")[..8]);

        public LocalCommandRunner Runner { get; }

        public void Dispose() => Directory.Delete(Dir, recursive: true);
    }

    [SkippableFact]
    public void Connect_time_programs_are_listed_and_removed_by_bpftool_5_3_without_links()
    {
        RequireTools();
        using var old = new Bpftool53();
        // The stand-in is what it says: no link object, the rest as bpftool does.
        var refused = Assert.Throws<NodeCommandException>(() => new CommandDataplane(old.Runner).RunText("bpftool", "-j", "link", "show"));
        Assert.Equal(255, refused.ExitCode);

        using var scope = new CgroupScope();
        scope.Attach(CgroupAttachType.Connect4, "calico_connect_", "calico_connect_v4");
        scope.Attach(CgroupAttachType.Connect6, "other_connect6", "other_connect6");
        var remote = new CommandDataplane(old.Runner, scope.Fs.PinDirectory);
        var local = new LocalDataplane(scope.Fs.PinDirectory);

        // Programs and hooks as the local read has them; which pin holds a link bpftool 5.3 cannot say.
        IReadOnlyList<ConnectTimeProgram> theirs = ConnectTime.Programs(remote, scope.Cgroup, scope.Links, calicoOnly: false);
        IReadOnlyList<ConnectTimeProgram> ours = ConnectTime.Programs(local, scope.Cgroup, scope.Links, calicoOnly: false);
        Assert.Equal(ours.Select(p => (p.AttachType, p.ProgramId, p.Name)), theirs.Select(p => (p.AttachType, p.ProgramId, p.Name)));
        Assert.All(theirs, p => Assert.Null(p.LinkPath));

        // Removing a link's pin releases the link, which detaches its program.
        var plan = ConnectTime.Plan(remote, scope.Links);
        Assert.Equal(new[] { "calico_connect_v4" }, plan.Links.Select(Path.GetFileName));
        remote.RemoveConnectTimeLink(plan.Links[0]);
        // The kernel frees a link whose last reference went in a work item (bpf_link_put schedules
        // bpf_link_put_deferred), so the detach follows the unpin shortly, not at once.
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (BpfPrograms.QueryCgroup(scope.Cgroup, (uint)CgroupAttachType.Connect4).Count > 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(20);
        }

        Assert.Empty(BpfPrograms.QueryCgroup(scope.Cgroup, (uint)CgroupAttachType.Connect4));
        Assert.Single(BpfPrograms.QueryCgroup(scope.Cgroup, (uint)CgroupAttachType.Connect6));
        Assert.False(File.Exists(plan.Links[0]));
    }

    [SkippableFact]
    public void DeleteMany_sends_keys_on_stdin_and_counts_exactly_what_it_deleted()
    {
        RequireTools();
        using var fs = new BpfFsScope();
        byte[] Key(int i) => BitConverter.GetBytes(i).Concat(new byte[12]).ToArray();
        using (BpfMap map = BpfMap.Create(BpfMapType.Hash, 16, 8, 20000, "cali_v4_ct3"))
        {
            for (int i = 0; i < 9500; i++)
            {
                map.Update(Key(i), new byte[8]);
            }

            map.Pin(Path.Combine(fs.PinDirectory, "cali_v4_ct3"));
        }

        var runner = new CountingRunner(new LocalCommandRunner("n1"));
        var remote = new CommandDataplane(runner, fs.PinDirectory);
        using IMapWriter writer = remote.OpenMapForWrite("cali_v4_ct3");
        runner.Starts = 0;
        // 5000 present keys, a run of 20 that never existed, then 4000 more present ones with a gone key
        // after 8500: batches of 4096 keys; the run sends the rest of its chunk (the second) through the
        // per-key loop (two gone in a row); the single gone key in the third only costs a new batch after it.
        var keys = Enumerable.Range(0, 5000).Concat(Enumerable.Range(50000, 20))
            .Concat(Enumerable.Range(5000, 4000).SelectMany(i => i == 8500 ? new[] { i, 60000 } : new[] { i }))
            .Select(Key).ToList();
        Assert.Equal(9000, writer.DeleteMany(keys));
        // chunk 1: one batch; chunk 2: a batch up to the run, one that fails at once, the loop; chunk 3: two batches.
        Assert.Equal(6, runner.Starts);
        using BpfMap after = BpfMap.OpenPinned(Path.Combine(fs.PinDirectory, "cali_v4_ct3"));
        Assert.Equal(Enumerable.Range(9000, 500).Select(i => Convert.ToHexString(Key(i))).Order(),
            after.ReadEntries().SelectMany(b => Enumerable.Range(0, b.Count).Select(j => Convert.ToHexString(b.Key(j))).ToList()).Order());
        Assert.Equal(0, writer.DeleteMany(keys.Take(3).ToList()));
        Assert.True(writer.Delete(Key(9100)));
        Assert.False(writer.Delete(Key(9100)));
    }

    private sealed class CountingRunner : ICommandRunner
    {
        private readonly ICommandRunner _inner;

        public CountingRunner(ICommandRunner inner) => _inner = inner;

        public int Starts { get; set; }

        public string Node => _inner.Node;

        public ICommandRun Start(IReadOnlyList<string> argv, CancellationToken cancellationToken, ReadOnlyMemory<byte> standardInput = default)
        {
            Starts++;
            return _inner.Start(argv, cancellationToken, standardInput);
        }
    }

    internal sealed class NetnsRunner : ICommandRunner
    {
        private readonly string _ns;
        private readonly LocalCommandRunner _inner;

        /// <param name="toolDirectory">A directory put first on PATH (a release's bpftool); null: this process's PATH.</param>
        public NetnsRunner(string ns, string node, string? toolDirectory = null)
        {
            _ns = ns;
            _inner = new LocalCommandRunner(node, toolDirectory is null ? null
                : new Dictionary<string, string> { ["PATH"] = toolDirectory + ":" + Environment.GetEnvironmentVariable("PATH") });
        }

        public string Node => _inner.Node;

        public ICommandRun Start(IReadOnlyList<string> argv, CancellationToken cancellationToken, ReadOnlyMemory<byte> standardInput = default) =>
            _inner.Start(new[] { "ip", "netns", "exec", _ns }.Concat(argv).ToList(), cancellationToken, standardInput);
    }
}
