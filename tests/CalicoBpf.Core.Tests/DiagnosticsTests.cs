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
        Assert.Equal(12, Checks.All.Count);
        Assert.Equal(Checks.All.Count, Checks.All.Select(c => c.Id).Distinct().Count());
        Assert.Equal(new[] { "access", "bpf-running", "debug-logging", "drops", "capacity" }, Checks.All.Where(c => c.Local).Select(c => c.Id));
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
