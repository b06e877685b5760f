namespace CalicoBpf.Tests;

/// <summary>Map timestamps to wall time: two reads of an unchanged entry give the same LastSeen.</summary>
public class ClockSampleTests
{
    private static readonly DateTime Boot = new(2026, 11, 26, 0, 0, 0, DateTimeKind.Utc);

    private static ClockSample At(double monotonicSeconds, double jitterMs) =>
        new((ulong)(monotonicSeconds * 1e9), Boot.AddSeconds(monotonicSeconds).AddTicks((long)(jitterMs * TimeSpan.TicksPerMillisecond)));

    [Fact]
    public void Samples_of_one_node_share_its_first_epoch_so_a_timestamp_maps_to_one_time()
    {
        string node = "clock-test-" + Guid.NewGuid();
        const ulong lastSeen = 4_000_000_000_000;
        DateTime first = At(5_000, 0.003).Anchored(node).WallTimeOf(lastSeen);
        // Sampled later with a few milliseconds between the two clock reads (an exec): same wall time.
        ClockSample later = At(5_060, 7.5).Anchored(node);
        Assert.Equal(first, later.WallTimeOf(lastSeen));
        // Ages still come from the monotonic clock alone.
        Assert.Equal(TimeSpan.FromSeconds(1_060), later.AgeOf(lastSeen));
    }

    [Fact]
    public void A_clock_step_beyond_the_tolerance_anchors_again_and_nodes_are_apart()
    {
        string node = "clock-test-" + Guid.NewGuid();
        DateTime before = At(100, 0).Anchored(node).WallTimeOf(50_000_000_000);
        DateTime stepped = At(200, 2_000).Anchored(node).WallTimeOf(50_000_000_000);
        Assert.Equal(TimeSpan.FromSeconds(2), stepped - before);
        Assert.Equal(At(300, 900).WallTimeOf(50_000_000_000), At(300, 900).Anchored("clock-test-" + Guid.NewGuid()).WallTimeOf(50_000_000_000));
    }
}
