using CalicoBpf.Diagnostics;

namespace CalicoBpf.Tests;

public class DiagnosticsTests
{
    [Fact]
    public void Felix_log_lines_parse_with_their_fields()
    {
        FelixLogLine line = FelixLogLine.Parse("2026-08-22 10:15:29.871 [ERROR][1234] felix/daemon.go 1608: BPF dataplane mode enabled but not supported by the kernel.  Disabling BPF mode. error=kernel is too old (have: 4.15.0-213 but want at least: 5.3.0)")!;
        Assert.Equal(("ERROR", "felix"), (line.Level, line.Component));
        Assert.StartsWith(FelixLog.NotSupported, line.Message);
        Assert.Equal("kernel is too old (have: 4.15.0-213 but want at least: 5.3.0)", line.Field("error"));
        FelixLogLine iface = FelixLogLine.Parse("2026-08-22 10:15:30.000 [WARNING][7] felix/bpf_ep_mgr.go 12: Failed to apply policy to interface, will retry iface=\"eth0\" error=boom")!;
        Assert.Equal("eth0", iface.Field("iface"));
        Assert.Null(FelixLogLine.Parse("not a felix line"));
        Assert.Null(FelixLogLine.Parse("2026-08-22 10:15:30 [INFO] no millis"));
    }

    [Fact]
    public void The_last_matching_line_wins()
    {
        var lines = FelixLog.Parse("""
            2026-11-26 05:00:00.000 [INFO][1] felix/int_dataplane.go 1200: BPF enabled, starting BPF endpoint manager and map manager.
            continuation without a stamp
            2026-11-26 06:00:00.000 [INFO][1] felix/int_dataplane.go 1200: BPF enabled, starting BPF endpoint manager and map manager.
            """.Replace("            ", string.Empty)).ToList();
        Assert.Equal(2, lines.Count);
        Assert.Equal("2026-11-26 06:00:00.000", FelixLog.Last(lines, FelixLog.Started)!.Time);
    }

    [Theory]
    [InlineData("6.8.0-1015-aws", "Ubuntu 24.04.1 LTS", true)]
    [InlineData("5.3.0", "Debian", true)]
    [InlineData("5.2.21", "Debian", false)]
    [InlineData("4.15.0-213-generic", "Ubuntu 18.04.6 LTS", false)]
    [InlineData("4.18.0-193.el8.x86_64", "Red Hat Enterprise Linux 8.2", true)]
    [InlineData("4.18.0-147.el8.x86_64", "Red Hat Enterprise Linux 8.1", false)]
    public void Felix_kernel_gate_per_distribution(string kernel, string os, bool passes) =>
        Assert.Equal(passes, KernelRequirement.PassesGate(kernel, os));

    [Fact]
    public void Checks_have_distinct_ids_in_the_guides_order()
    {
        Assert.Equal(16, Checks.All.Count);
        Assert.Equal(Checks.All.Count, Checks.All.Select(c => c.Id).Distinct().Count());
        Assert.Equal(new[] { "access", "bpf-running", "debug-logging", "drops", "capacity", "interface-state" }, Checks.All.Where(c => c.Local).Select(c => c.Id));
    }
}

/// <summary>The debug-logging check's words when the trace buffer cannot be read, said once.</summary>
public class DebugLoggingTraceBufferTests
{
    /// <summary>A dataplane whose trace buffer fails as given, and that has nothing else (the check reads nothing else locally).</summary>
    public class Unreadable : System.Reflection.DispatchProxy
    {
        public Exception Failure { get; set; } = new InvalidOperationException();

        protected override object? Invoke(System.Reflection.MethodInfo? method, object?[]? args) =>
            method?.Name switch
            {
                "get_Node" => "n",
                "ReadTraceLines" => throw Failure,
                _ => throw new NotSupportedException(method?.Name),
            };
    }

    private static CheckResult Run(Exception failure)
    {
        INodeDataplane local = System.Reflection.DispatchProxy.Create<INodeDataplane, Unreadable>();
        ((Unreadable)(object)local).Failure = failure;
        return new DebugLoggingCheck().Run(new CheckContext(null, null, local, CancellationToken.None)).Single();
    }

    [Fact]
    public void No_trace_buffer_is_skipped_with_the_reason_said_once()
    {
        CheckResult r = Run(new BpfEnvironmentException("The kernel trace buffer is not reachable: neither tracefs nor debugfs is mounted. Mount it (mount -t tracefs nodev /sys/kernel/tracing) and try again.", BpfEnvironmentProblem.NoTraceFs));
        Assert.Equal(CheckStatus.Skipped, r.Status);
        Assert.Equal("Not checked: The kernel trace buffer is not reachable: neither tracefs nor debugfs is mounted. Mount it (mount -t tracefs nodev /sys/kernel/tracing) and try again.", r.Message);
    }

    [Fact]
    public void A_trace_buffer_for_root_only_points_at_the_access_check()
    {
        CheckResult r = Run(new BpfEnvironmentException("The kernel trace buffer (/sys/kernel/tracing) is readable by root only.", BpfEnvironmentProblem.NotRoot));
        Assert.Equal((CheckStatus.Skipped, "Not checked: reading this machine's BPF maps needs root (see access)."), (r.Status, r.Message));
    }
}

/// <summary>The capacity check on real maps: every map Felix fills, what stops when it is full, and what grows it.</summary>
public sealed class CapacityCheckTests
{
    private static CheckResult Run(Action<SimulatedDataplane> seed)
    {
        using var fs = new BpfFsScope();
        using (SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory))
        {
            seed(sim);
        }

        var node = new LocalDataplane(fs.PinDirectory, "cap1");
        return Assert.Single(new CapacityCheck().Run(new CheckContext(null, null, node, CancellationToken.None)));
    }

    private static MapSpec Spec(string baseName) => MapSpecs.Current.Single(s => s.BaseName == baseName);

    [SkippableFact]
    public void A_full_map_felix_cannot_add_to_fails_and_names_its_field()
    {
        CheckResult r = Run(sim =>
        {
            BpfMap iface = sim.CreateMap(Spec("cali_iface"), maxEntries: 4);
            for (int i = 1; i <= 4; i++)
            {
                iface.Update(BitConverter.GetBytes(i), InterfaceStateMap.EncodeValue(4, InterfaceStateFlags.Workload | InterfaceStateFlags.V4Ready, "cali" + i, -1));
            }

            BpfMap routes = sim.CreateMap(Spec("cali_v4_routes"), maxEntries: 100);
            routes.Update(RouteMap.EncodeKey(IPAddress.Parse("10.65.0.0"), 26), RouteMap.EncodeValue(RouteFlags.Workload, false, IPAddress.Parse("172.18.0.11")));
        });
        Assert.Equal(CheckStatus.Fail, r.Status);
        Assert.StartsWith("Above 90 % full: cali_iface4 100% (when full Felix cannot add new interfaces (new pods get no programs;", r.Message);
        Assert.Contains("Calico issue #6935", r.Message);
        Assert.Equal("Set-FelixBpfConfig -BpfMapSizeIfState 8  (Felix restarts to resize)", r.Remediation);
        Assert.Equal("cali_iface4 4/4 (100%); cali_v4_routes 1/100 (1%)", r.Evidence);
    }

    [SkippableFact]
    public void A_nearly_full_lru_map_warns_that_entries_are_evicted_and_a_fixed_one_says_it_is_fixed()
    {
        CheckResult r = Run(sim =>
        {
            BpfMap arp = sim.CreateMap(Spec("cali_v4_arp"), maxEntries: 10);
            for (int i = 1; i <= 10; i++)
            {
                arp.Update(ArpMap.EncodeKey(IPAddress.Parse("172.18.0." + i), 2), ArpMap.EncodeValue("66:e2:1f:00:0a:01", "66:e2:1f:00:0b:02"));
            }
        });
        Assert.Equal(CheckStatus.Warning, r.Status);
        Assert.Contains("cali_v4_arp2 100% (LRU: when full the kernel evicts the least recently used entries", r.Message);
        Assert.Equal("cali_v4_arp2 has a size fixed in Calico's code: find what fills it (Get-BpfMap cali_v4_arp2, and the objects of its family)", r.Remediation);
    }

    [SkippableFact]
    public void Conntrack_grows_itself_from_v3_30_and_the_check_says_so()
    {
        CheckResult r = Run(sim => NodeScenario.Parse("""
            node: cap1
            conntrackMaxEntries: 20
            conntrack: { tcp: 19 }
            """).Seed(sim, new Dictionary<string, int>()));
        Assert.Equal(CheckStatus.Warning, r.Status);
        Assert.Contains("cali_v4_ct4 95%", r.Message);
        Assert.StartsWith("Felix doubles cali_v4_ct4 itself when it is nearly full (bpfMapSizeConntrackScaling DoubleIfFull, /var/lib/calico/bpf_ct_map_size)", r.Remediation);
        Assert.EndsWith("Set-FelixBpfConfig -BpfMapSizeConntrack 40  (Felix restarts to resize)", r.Remediation);
    }
}
