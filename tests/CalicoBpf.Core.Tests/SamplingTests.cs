using CalicoBpf.Sampling;
using CsCheck;
using Microsoft.Extensions.Time.Testing;

namespace CalicoBpf.Tests;

/// <summary>
/// Counters over time (Get-BpfCounter -SampleInterval): the rise of each counter between readings, a
/// reset where it went down or its interface was recreated (never a negative rise), rates over the time
/// between the two readings, and the one clock of a run. The kernel-side proofs (real packets through a
/// tc program, remote nodes) are tests/Pester/Sampling.Tests.ps1.
/// </summary>
public sealed class SamplingTests
{
    [Fact]
    public void The_first_reading_is_a_baseline_and_the_next_give_the_rise()
    {
        var series = new CounterSeries<string>();
        Assert.True(series.Observe("a", 10).Baseline);
        series.EndReading();
        Assert.Equal(new CounterChange(5, false, false), series.Observe("a", 15));
        series.EndReading();
        Assert.Equal(new CounterChange(0, false, false), series.Observe("a", 15));
    }

    [Fact]
    public void A_counter_that_went_down_is_a_reset_with_the_value_it_has_now()
    {
        var series = new CounterSeries<string>();
        series.Observe("a", 1_000);
        series.EndReading();
        Assert.Equal(new CounterChange(7, true, false), series.Observe("a", 7));
        series.EndReading();
        Assert.Equal(new CounterChange(3, false, false), series.Observe("a", 10));
    }

    [Fact]
    public void A_new_generation_or_a_new_key_is_a_reset()
    {
        var series = new CounterSeries<string>();
        series.Observe("eth0", 500, generation: 2);
        series.EndReading();
        // The interface was recreated with a new ifindex, and counted 600 since: more than before, still a reset.
        Assert.Equal(new CounterChange(600, true, false), series.Observe("eth0", 600, generation: 9));
        Assert.Equal(new CounterChange(4, true, false), series.Observe("cali1", 4));
    }

    [Fact]
    public void Keys_gone_from_a_reading_are_forgotten_and_a_failed_reading_changes_nothing()
    {
        var series = new CounterSeries<int>();
        for (int k = 0; k < 100; k++)
        {
            series.Observe(k, 1);
        }

        series.EndReading();
        series.Observe(1, 2);
        series.EndReading();
        Assert.Equal(1, series.Count);
        series.Observe(1, 99);
        series.AbandonReading();
        Assert.Equal(new CounterChange(1, false, false), series.Observe(1, 3));
    }

    [Fact]
    public void Deltas_add_up_to_the_rise_and_are_never_negative()
    {
        // Any run of readings, with resets: the deltas between resets add up to the rise, and a reset's delta is its value.
        Gen.ULong[0, 1UL << 62].Array[2, 30].Sample(values =>
        {
            var series = new CounterSeries<string>();
            series.Observe("c", values[0]);
            series.EndReading();
            for (int i = 1; i < values.Length; i++)
            {
                CounterChange change = series.Observe("c", values[i]);
                series.EndReading();
                Assert.Equal(values[i] < values[i - 1], change.Reset);
                Assert.Equal(change.Reset ? values[i] : values[i] - values[i - 1], change.Delta);
            }
        });
    }

    [Fact]
    public async Task Samples_are_due_on_one_grid_and_a_late_one_skips_what_it_missed()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 2, 1, 0, 0, TimeSpan.Zero));
        var clock = new SampleClock(TimeSpan.FromSeconds(1), time);
        Assert.Equal(0, clock.Baseline.Number);

        // The grid starts once the baseline is read (however long that took); then sample 1 took 2.5 s
        // to be asked for: samples 1 and 2 were due during it, so the next is at 3 s.
        time.Advance(TimeSpan.FromSeconds(7));
        clock.Start();
        var start = time.GetUtcNow();
        time.Advance(TimeSpan.FromMilliseconds(2500));
        Task<SampleTick?> next = Task.Run(() => clock.WaitForNext(1, CancellationToken.None));
        SampleTick? tick = await Advance(time, next, TimeSpan.FromMilliseconds(500));
        Assert.Equal(1, tick!.Value.Number);
        Assert.Equal(start.UtcDateTime.AddSeconds(3), tick.Value.Timestamp);
        Assert.Equal(2, clock.Skipped);

        // On time from there: due at 4 s, waits the rest of the interval and no more.
        time.Advance(TimeSpan.FromMilliseconds(200));
        next = Task.Run(() => clock.WaitForNext(2, CancellationToken.None));
        Assert.Equal(start.UtcDateTime.AddSeconds(4), (await Advance(time, next, TimeSpan.FromMilliseconds(800)))!.Value.Timestamp);
        Assert.Equal(2, clock.Skipped);
    }

    [Fact]
    public async Task Ctrl_C_ends_the_wait_at_once()
    {
        var clock = new SampleClock(TimeSpan.FromHours(1));
        using var stop = new CancellationTokenSource();
        Task<SampleTick?> next = Task.Run(() => clock.WaitForNext(1, stop.Token));
        stop.CancelAfter(50);
        Assert.Null(await next.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void A_counter_sample_divides_its_rise_by_the_time_between_the_middles_of_the_reads()
    {
        var time = new FakeTimeProvider();
        var sampler = new CounterSampler(time);
        var tick = new SampleTick(1, new DateTime(2026, 12, 2, 1, 0, 1, DateTimeKind.Utc));
        Assert.Empty(sampler.Sample(Reading(time, TimeSpan.FromMilliseconds(100), Counter("eth0", 2, "DroppedByPolicy", 10, egress: 5)), tick with { Number = 0 }));
        time.Advance(TimeSpan.FromMilliseconds(900));

        // The reads took 100 ms and 300 ms: their middles are 0.05 s and 1.15 s, so 1.1 s apart.
        IReadOnlyList<CounterSample> samples = sampler.Sample(Reading(time, TimeSpan.FromMilliseconds(300),
            Counter("eth0", 2, "DroppedByPolicy", 21, egress: 5), Counter("eth0", 2, "TotalPackets", 1)), tick);
        CounterSample moved = Assert.Single(samples, s => !s.Reset);
        Assert.Equal((PolicyHook.Ingress, 11UL, 21UL, 1), (moved.Hook, moved.Delta, moved.Value, moved.Sample));
        Assert.Equal(TimeSpan.FromMilliseconds(1100), moved.IntervalValue);
        Assert.Equal(10.0, moved.Rate, 9);
        Assert.Equal(tick.Timestamp, moved.Timestamp);
        // The egress counter did not move (left out), TotalPackets is new since the baseline (a reset).
        CounterSample fresh = Assert.Single(samples, s => s.Reset);
        Assert.Equal(("TotalPackets", 1UL), (fresh.Id, fresh.Delta));

        time.Advance(TimeSpan.FromSeconds(1));
        IReadOnlyList<CounterSample> all = sampler.Sample(Reading(time, TimeSpan.Zero,
            Counter("eth0", 2, "DroppedByPolicy", 21, egress: 5), Counter("eth0", 2, "TotalPackets", 1)), tick with { Number = 2 }, includeUnchanged: true);
        Assert.Equal(3, all.Count);
        Assert.All(all, s => Assert.Equal(0UL, s.Delta));
    }

    [Fact]
    public void A_rule_sample_follows_the_rule_by_its_match_id_and_skips_rules_without_a_counter()
    {
        var time = new FakeTimeProvider();
        var sampler = new PolicyRuleSampler(time);
        PolicyRule Rule(ulong? id, ulong? hits) => new() { Node = "n", Interface = "cali1", Hook = PolicyHook.Ingress, Tier = "default", Policy = "p", Action = "deny", MatchId = id, HitCount = hits };
        Assert.Empty(sampler.Sample(new[] { Rule(7, 100), Rule(null, null) }, new SampleTick(0, DateTime.UnixEpoch)));
        time.Advance(TimeSpan.FromSeconds(2));
        PolicyRuleSample s = Assert.Single(sampler.Sample(new[] { Rule(7, 104), Rule(null, null) }, new SampleTick(1, DateTime.UnixEpoch)));
        Assert.Equal((7UL, 4UL, 2.0, false), (s.MatchId, s.Delta, s.Rate, s.Reset));
    }

    [Fact]
    public void A_reading_that_fails_leaves_the_series_as_it_was()
    {
        var sampler = new CounterSampler(new FakeTimeProvider());
        sampler.Sample(new[] { Counter("eth0", 2, "DroppedByPolicy", 10) }, new SampleTick(0, DateTime.UnixEpoch));
        Assert.Throws<InvalidOperationException>(() => sampler.Sample(Failing(), new SampleTick(1, DateTime.UnixEpoch)));
        CounterSample s = Assert.Single(sampler.Sample(new[] { Counter("eth0", 2, "DroppedByPolicy", 12) }, new SampleTick(2, DateTime.UnixEpoch)));
        Assert.Equal((2UL, false), (s.Delta, s.Reset));

        static IEnumerable<InterfaceCounter> Failing()
        {
            yield return Counter("eth0", 2, "DroppedByPolicy", 0);
            throw new InvalidOperationException("exec failed");
        }
    }

    private static InterfaceCounter Counter(string iface, int ifIndex, string id, ulong ingress, ulong? egress = null) =>
        new() { Node = "n", Interface = iface, IfIndex = ifIndex, Id = id, Name = id, Category = CounterCategory.Dropped, Ingress = ingress, Egress = egress };

    /// <summary>A reading that takes <paramref name="duration"/> on the fake clock.</summary>
    private static IEnumerable<InterfaceCounter> Reading(FakeTimeProvider time, TimeSpan duration, params InterfaceCounter[] counters)
    {
        time.Advance(duration);
        foreach (InterfaceCounter c in counters)
        {
            yield return c;
        }
    }

    /// <summary>Moves the fake clock on once the waiter is waiting, then lets it run.</summary>
    private static async Task<SampleTick?> Advance(FakeTimeProvider time, Task<SampleTick?> waiter, TimeSpan by)
    {
        await Task.Delay(200);
        time.Advance(by);
        return await waiter.WaitAsync(TimeSpan.FromSeconds(5));
    }
}

/// <summary>
/// Get-BpfDrop's reading of Calico's own trace lines (tests/fixtures/realcalico, both releases): a policy
/// drop is the packet's lines from "New packet" to "DENY due to policy" (the drop program prints no final
/// result), and the hook it happened on is the one whose counter Calico's programs moved.
/// </summary>
public sealed class DropTraceTests
{
    public static TheoryData<string> Releases()
    {
        var data = new TheoryData<string>();
        foreach (string r in RealCalicoPaths.CapturedReleases())
        {
            data.Add(r);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Releases))]
    public void Calicos_policy_drops_are_one_packet_each_on_the_hook_that_counted_them(string release)
    {
        var node = new RealCalicoCapturedNode(RealCalicoPaths.Fixture(release));
        CalicoRelease decodedAs = ReleaseInference.Of(node).Release;
        List<string> lines = node.ReadTraceLines(false, null, default).ToList();
        List<TraceLogEntry> entries = lines.Select(l => TraceLogParser.Parse(l, node.Node, null, decodedAs)).ToList();

        List<List<TraceLogEntry>> drops = Sampling.DropSampler.DroppedPackets(entries);
        List<List<TraceLogEntry>> denied = drops.Where(p => p[0].Interface == "rcal-h1").ToList();
        Assert.NotEmpty(denied);
        Assert.Equal(lines.Count(l => l.Contains("rcal-h1-", StringComparison.Ordinal) && l.EndsWith(": DENY due to policy", StringComparison.Ordinal)), denied.Count);
        Assert.All(denied, p =>
        {
            Assert.StartsWith("New packet at ifindex=", p[0].Message, StringComparison.Ordinal);
            Assert.Equal("DENY due to policy", p[^1].Message);
            Assert.Contains(p, e => e.Message == "IP s=10.78.1.2 d=10.78.1.1");
            Assert.All(p, e => Assert.Equal(p[0].Cpu, e.Cpu));
        });

        // rcal-h0 allows everything: none of its packets is a drop. rcal-h2's default deny prints a final DENY.
        Assert.DoesNotContain(drops, p => p[0].Interface == "rcal-h0");
        Assert.All(drops.Where(p => p[0].Interface == "rcal-h2"), p => Assert.Equal("DENY", p[^1].Result));

        // The tag is E (from the pod); Calico counted the drops at the veth's TC ingress hook.
        TraceDirection tagged = Assert.Single(denied.Select(p => p[0].Direction).Distinct());
        Assert.Equal(TraceDirection.Egress, tagged);
        InterfaceCounter byPolicy = CounterReader.Read(node).Single(c => c.Interface == "rcal-h1" && c.Id == "DroppedByPolicy");
        Assert.True(byPolicy.Ingress > 0, "Calico counted the policy drops of rcal-h1 at TC ingress");
        Assert.Equal(PolicyHook.Ingress, Sampling.DropSampler.HookOf(tagged, workload: true));
    }
}

/// <summary>
/// Watch-BpfConntrack's churn on a real conntrack map: what is new, what closed and what is gone between
/// two readings, each once; only what the filter lets through is kept.
/// </summary>
public sealed class ConntrackWatcherTests
{
    private static ConntrackEntry Tcp(int port, bool closed = false, ulong bytes = 10) => new()
    {
        Protocol = IpProtocol.Tcp,
        SourceAddressValue = IPAddress.Parse("10.65.0.8"),
        SourcePort = port,
        DestinationAddressValue = IPAddress.Parse("10.65.2.17"),
        DestinationPort = 80,
        LastSeenNanoseconds = KernelInfo.MonotonicNanoseconds() - 1_000_000_000,
        Forward = new ConntrackLeg { SynSeen = true, AckSeen = true, FinSeen = closed, Opener = true, Bytes = bytes },
        Reverse = new ConntrackLeg { SynSeen = true, AckSeen = true, FinSeen = closed, Bytes = bytes },
    };

    private static ConntrackEntry Udp(int port) => new()
    {
        Protocol = IpProtocol.Udp,
        SourceAddressValue = IPAddress.Parse("10.65.0.8"),
        SourcePort = port,
        DestinationAddressValue = IPAddress.Parse("10.96.0.10"),
        DestinationPort = 53,
        LastSeenNanoseconds = KernelInfo.MonotonicNanoseconds() - 1_000_000_000,
    };

    [SkippableFact]
    public void Each_new_closed_and_gone_flow_is_one_change_and_nothing_else_is()
    {
        using var fs = new BpfFsScope();
        using SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory);
        MapSpec spec = MapSpecs.Conntrack(4, false);
        BpfMap map = sim.CreateMap(spec, maxEntries: 1000);
        ConntrackLayout layout = ConntrackLayout.For(spec.PinName, 4, spec.KeySize, spec.ValueSize);
        sim.WriteConntrack(map, layout, new[] { Tcp(40000), Tcp(40001), Udp(50000) });
        var node = new LocalDataplane(fs.PinDirectory, "node-w");
        var watcher = new Sampling.ConntrackWatcher();
        var query = new ConntrackQuery();

        Assert.Empty(watcher.Sample(node, query, new Sampling.SampleTick(0, DateTime.UtcNow), null, default));
        Assert.Equal(3, watcher.Count);

        // A new flow, one that closed (FIN both ways), one that only moved more bytes, one removed.
        sim.WriteConntrack(map, layout, new[] { Tcp(40002), Tcp(40000, closed: true), Tcp(40001, bytes: 500) });
        byte[] key = new byte[layout.KeySize], value = new byte[layout.ValueSize];
        ConntrackCodec.Encode(layout, Udp(50000), key, value);
        Assert.True(map.Delete(key));

        var changes = watcher.Sample(node, query, new Sampling.SampleTick(1, DateTime.UtcNow), null, default)
            .Select(c => $"{c.Change} {c.Protocol} {c.Source}").OrderBy(s => s, StringComparer.Ordinal).ToList();
        Assert.Equal(new[] { "Closed Tcp 10.65.0.8:40000", "Expired Udp 10.65.0.8:50000", "New Tcp 10.65.0.8:40002" }, changes);
        Assert.Equal(3, watcher.Count);

        // Nothing changed since: nothing; a closed flow that moves again is not closed twice.
        Assert.Empty(watcher.Sample(node, query, new Sampling.SampleTick(2, DateTime.UtcNow), null, default));
        sim.WriteConntrack(map, layout, new[] { Tcp(40000, closed: true, bytes: 900) });
        Assert.Empty(watcher.Sample(node, query, new Sampling.SampleTick(3, DateTime.UtcNow), null, default));

        // Calico reuses the closed entry for a new connection of the same ports: New again, and it can close again.
        sim.WriteConntrack(map, layout, new[] { Tcp(40000, bytes: 5) });
        ConntrackChange again = Assert.Single(watcher.Sample(node, query, new Sampling.SampleTick(4, DateTime.UtcNow), null, default));
        Assert.Equal((ConntrackChangeKind.New, TcpState.Established), (again.Change, again.State));
        sim.WriteConntrack(map, layout, new[] { Tcp(40000, closed: true, bytes: 50) });
        Assert.Equal(ConntrackChangeKind.Closed, Assert.Single(watcher.Sample(node, query, new Sampling.SampleTick(5, DateTime.UtcNow), null, default)).Change);
    }

    [Fact]
    public void Rule_counters_are_one_per_match_id_so_a_rule_new_on_an_interface_is_no_reset()
    {
        var time = new FakeTimeProvider();
        var sampler = new Sampling.PolicyRuleSampler(time);
        PolicyRule On(string iface, ulong hits) => new() { Node = "n", Interface = iface, Hook = PolicyHook.Ingress, Tier = "default", Policy = "p", Action = "deny", MatchId = 9, HitCount = hits };
        sampler.Sample(new[] { On("cali1", 1_000_000) }, new Sampling.SampleTick(0, DateTime.UnixEpoch));
        time.Advance(TimeSpan.FromSeconds(1));
        // A new pod's interface gets the same policy: Calico's counter of match id 9 rose by 3 in all.
        var samples = sampler.Sample(new[] { On("cali1", 1_000_003), On("cali2", 1_000_003) }, new Sampling.SampleTick(1, DateTime.UnixEpoch));
        Assert.Equal(new[] { ("cali1", 3UL, false), ("cali2", 3UL, false) }, samples.Select(s => (s.Interface, s.Delta, s.Reset)));
    }

    [SkippableFact]
    public void Only_what_the_filter_lets_through_is_kept_and_a_gone_entry_is_shown_as_last_seen()
    {
        using var fs = new BpfFsScope();
        using SimulatedDataplane sim = SimulatedDataplane.Claim(fs.PinDirectory);
        MapSpec spec = MapSpecs.Conntrack(4, false);
        BpfMap map = sim.CreateMap(spec, maxEntries: 1000);
        ConntrackLayout layout = ConntrackLayout.For(spec.PinName, 4, spec.KeySize, spec.ValueSize);
        sim.WriteConntrack(map, layout, Enumerable.Range(0, 200).Select(i => Udp(50000 + i)).Append(Tcp(40000, bytes: 1234)));
        var node = new LocalDataplane(fs.PinDirectory, "node-w");
        var watcher = new Sampling.ConntrackWatcher();
        var query = new ConntrackQuery { Ports = new[] { 40000 } };

        Assert.Empty(watcher.Sample(node, query, new Sampling.SampleTick(0, DateTime.UtcNow), null, default));
        Assert.Equal(1, watcher.Count);
        byte[] key = new byte[layout.KeySize], value = new byte[layout.ValueSize];
        ConntrackCodec.Encode(layout, Tcp(40000), key, value);
        Assert.True(map.Delete(key));
        ConntrackCodec.Encode(layout, Udp(50007), key, value);
        Assert.True(map.Delete(key));

        ConntrackChange gone = Assert.Single(watcher.Sample(node, query, new Sampling.SampleTick(1, DateTime.UtcNow), null, default));
        Assert.Equal(ConntrackChangeKind.Expired, gone.Change);
        Assert.Equal(1234UL, gone.Entry.Forward.Bytes);
        Assert.Equal(TcpState.Established, gone.State);
        Assert.Equal(0, watcher.Count);
    }
}
