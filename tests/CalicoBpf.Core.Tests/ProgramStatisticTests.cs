using System.Buffers.Binary;
using System.Text.Json;
using static CalicoBpf.Tests.CommandTransportTests;

namespace CalicoBpf.Tests;

/// <summary>
/// Get-BpfProgramStatistic's measurements against the kernel: a tc program and a TCX program on a
/// test-owned veth, real datagrams through them, and the run counts the kernel kept over a window, read
/// locally (BPF_ENABLE_STATS) and through bpftool as on a node (kernel.bpf_stats_enabled), which must
/// be back as it was afterwards. Felix's profiling map (cali_profiling) read as profiling.h lays it out.
/// </summary>
public sealed class ProgramStatisticTests
{
    private const string Sysctl = "/proc/sys/kernel/bpf_stats_enabled";

    /// <summary>A namespace with veth cbt0/cbt1, IPv6 off (no router solicitations), a static neighbour behind cbt0: each datagram sent to 10.197.1.2 crosses cbt1 to cbt0's ingress.</summary>
    private sealed class Wire : IDisposable
    {
        public Wire()
        {
            try
            {
                Build();
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        private void Build()
        {
            Ns.Exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
            Ns.Ip("link", "add", "cbt0", "type", "veth", "peer", "name", "cbt1");
            Ns.Exec("sysctl", "-qw", "net.ipv6.conf.cbt0.disable_ipv6=1", "net.ipv6.conf.cbt1.disable_ipv6=1");
            Ns.Ip("link", "set", "cbt0", "up");
            Ns.Ip("link", "set", "cbt1", "up");
            Ns.Ip("route", "add", "10.197.1.2/32", "dev", "cbt1");
            string mac = JsonDocument.Parse(Ns.Ip("-j", "link", "show", "cbt0")).RootElement[0].GetProperty("address").GetString()!;
            Ns.Ip("neigh", "add", "10.197.1.2", "lladdr", mac, "dev", "cbt1");
        }

        public NetnsScope Ns { get; } = new();

        public BpfFsScope Fs { get; } = new();

        public uint TcIngress(string device, string program)
        {
            string pin = Path.Combine(Fs.Root, "tc_" + device);
            uint id = BpfPrograms.PinTcProgram(program, pin);
            Ns.Exec("tc", "qdisc", "add", "dev", device, "clsact");
            Ns.Exec("tc", "filter", "add", "dev", device, "ingress", "bpf", "da", "object-pinned", pin);
            return id;
        }

        /// <summary>A TCX link on the device's ingress, as Felix attaches with bpfAttachType TCX.</summary>
        public uint TcxIngress(string device, string program) => NetworkNamespace.Run(Ns.Name, () =>
            BpfPrograms.AttachToDevice(NetLink.ListLinks().Values.Single(l => l.Name == device).IfIndex, DeviceAttachType.TcxIngress, program,
                Path.Combine(Fs.Root, "tcx_" + device), verdict: -1).ProgramId);   // TCX_NEXT: the tc filter runs after it

        public void Send(int datagrams) => Ns.Exec("bash", "-c", $"for i in $(seq 1 {datagrams}); do echo x > /dev/udp/10.197.1.2/9; done");

        public void Dispose()
        {
            Ns.Dispose();
            Fs.Dispose();
        }
    }

    private static string StatsSetting() => File.ReadAllText(Sysctl).Trim();

    [SkippableFact]
    public void Each_datagram_is_one_run_of_the_hooks_program_locally_and_over_bpftool_and_the_statistics_go_back_off()
    {
        RequireTools();
        string bpftool75 = Kernel.Bpftool75Directory();
        using var w = new Wire();
        uint tc = w.TcIngress("cbt0", "cali_tc_preamble");
        uint tcx = w.TcxIngress("cbt0", "cali_tcx_pream");
        string before = StatsSetting();

        ProgramRunWindow Measure(INodeDataplane node, int datagrams)
        {
            Task send = Task.Run(async () =>
            {
                // The datagrams go a moment into the window, which leaves them seconds: starting bash in the
                // namespace took over 1.4 s once on a CI machine while the other test classes started.
                await Task.Delay(600);
                w.Send(datagrams);
            });
            ProgramRunWindow window = node.MeasurePrograms(new[] { tc, tcx }, TimeSpan.FromSeconds(6), default);
            send.GetAwaiter().GetResult();
            return window;
        }

        ProgramRunWindow local = NetworkNamespace.Run(w.Ns.Name, () => Measure(new LocalDataplane(null, "n"), 7));
        Assert.Equal(7UL, local.After[tc].RunCount - local.Before[tc].RunCount);
        Assert.Equal(7UL, local.After[tcx].RunCount - local.Before[tcx].RunCount);
        Assert.True(local.After[tc].RunTimeNanoseconds > local.Before[tc].RunTimeNanoseconds, "the runs took time");
        Assert.InRange(local.Elapsed, TimeSpan.FromSeconds(5.9), TimeSpan.FromSeconds(8));
        Assert.Equal(before, StatsSetting());

        var remote = new CommandDataplane(new NetnsRunner(w.Ns.Name, "n", bpftool75));
        ProgramRunWindow overBpftool = Measure(remote, 5);
        Assert.Equal(5UL, overBpftool.After[tc].RunCount - overBpftool.Before[tc].RunCount);
        Assert.Equal(5UL, overBpftool.After[tcx].RunCount - overBpftool.Before[tcx].RunCount);
        Assert.InRange(overBpftool.Elapsed, TimeSpan.FromSeconds(5.9), TimeSpan.FromSeconds(8));
        Assert.Equal(before == "1", overBpftool.WereEnabled);
        Assert.Equal(before, StatsSetting());

        // The attachments, measured: the programs of the hook (TCX runs before the tc filter), with their runs per second.
        List<ProgramStatistic> both = NetworkNamespace.Run(w.Ns.Name, () =>
        {
            Task send = Task.Run(async () => { await Task.Delay(600); w.Send(3); });
            var stats = Sampling.ProgramStatistics.Measure(new LocalDataplane(null, "n"), null, true, TimeSpan.FromSeconds(2)).ToList();
            send.GetAwaiter().GetResult();
            return stats;
        });
        Assert.Equal(new[] { $"cbt0 Ingress TC {tc} 3", $"cbt0 Ingress TCX {tcx} 3" }, both.Select(s => $"{s.Interface} {s.Hook} {s.Kind} {s.ProgramId} {s.Runs}").OrderBy(x => x, StringComparer.Ordinal));
        Assert.All(both, s => Assert.InRange(s.RunsPerSecond, 1.0, 2.0));
        Assert.All(both, s => Assert.True(s.AverageNanoseconds > 0));
    }

    [SkippableFact]
    public void Felix_profiling_is_read_by_interface_and_kind_and_left_in_place()
    {
        using var fs = new BpfFsScope();
        using SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory);
        BpfMap map = sim.CreateMap(new MapSpec("cali_profiling", 2, BpfMapType.PerCpuHash, 8, 16, 20000, false));
        int cpus = KernelInfo.PossibleCpuCount;
        void Write(int ifIndex, uint kind, ulong time, ulong samples)
        {
            byte[] key = new byte[8];
            BinaryPrimitives.WriteUInt32LittleEndian(key, (uint)ifIndex);
            BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(4), kind);
            byte[] value = new byte[16 * cpus];
            // Spread over the CPUs as the programs count: the sums are what is read.
            for (int c = 0; c < cpus; c++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(c * 16), c == 0 ? time - (ulong)(cpus - 1) : 1);
                BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(c * 16 + 8), c == 0 ? samples - (ulong)(cpus - 1) : 1);
            }

            map.Update(key, value);
        }

        Write(1, 0, 50_000, 100);   // lo: INGRESS new
        Write(1, 3, 9_000, 30);     // lo: EGRESS est
        var node = new LocalDataplane(fs.PinDirectory, "n");
        var rows = ProfilingMap.Read(node).Select(p => $"{p.Interface} {p.Direction} {p.Conntrack} {p.Samples} {p.TotalNanoseconds} {p.AverageNanoseconds}").ToList();
        Assert.Equal(new[] { "lo EGRESS est 30 9000 300", "lo INGRESS new 100 50000 500" }, rows);
        Assert.Equal(rows, ProfilingMap.Read(node).Select(p => $"{p.Interface} {p.Direction} {p.Conntrack} {p.Samples} {p.TotalNanoseconds} {p.AverageNanoseconds}").ToList());
    }
}
