namespace CalicoBpf.Sampling;

/// <summary>One sample of a run: its number (1 for the first after the baseline) and the time all nodes share for it.</summary>
/// <param name="Number">0 for the baseline reading, then 1, 2, ...</param>
/// <param name="Timestamp">When the sample was due (UTC), the same for every node of the sample.</param>
public readonly record struct SampleTick(int Number, DateTime Timestamp);

/// <summary>
/// The one clock of a sampling run (Get-Counter -SampleInterval): sample k is due at start + k x interval
/// (start: when the baseline was read, <see cref="Start"/>),
/// so waits do not add up to drift. A sample that is due while the one before is still being read is
/// skipped, not queued, and <see cref="Skipped"/> says how many were.
/// </summary>
public sealed class SampleClock
{
    private readonly TimeProvider _time;
    private long _start;
    private DateTime _startUtc;
    private long _due;

    public SampleClock(TimeSpan interval, TimeProvider? time = null)
    {
        if (interval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(interval), interval, "The sample interval must be positive.");
        }

        Interval = interval;
        _time = time ?? TimeProvider.System;
        _start = _time.GetTimestamp();
        _startUtc = _time.GetUtcNow().UtcDateTime;
    }

    public TimeSpan Interval { get; }

    /// <summary>Samples that were due while the one before was still being read (the client did not keep up).</summary>
    public int Skipped { get; private set; }

    /// <summary>The baseline reading, due now.</summary>
    public SampleTick Baseline => new(0, _time.GetUtcNow().UtcDateTime);

    /// <summary>
    /// Starts the grid now: called once the baseline is read, so that the first sample is one interval
    /// after it (a first read of many nodes opens their exec sessions and may take longer than the interval).
    /// </summary>
    public void Start()
    {
        _start = _time.GetTimestamp();
        _startUtc = _time.GetUtcNow().UtcDateTime;
        _due = 0;
    }

    /// <summary>
    /// Waits until the next sample is due and returns it; null when <paramref name="cancellationToken"/>
    /// stops the wait (Ctrl+C), at once.
    /// </summary>
    public SampleTick? WaitForNext(int number, CancellationToken cancellationToken)
    {
        TimeSpan elapsed = _time.GetElapsedTime(_start);
        long due = Math.Max(_due + 1, (long)Math.Ceiling(elapsed / Interval));
        if (due > _due + 1)
        {
            Skipped += (int)(due - _due - 1);
        }

        _due = due;
        TimeSpan wait = due * Interval - elapsed;
        if (wait > TimeSpan.Zero)
        {
            try
            {
                Task.Delay(wait, _time, cancellationToken).GetAwaiter().GetResult();
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }

        // The time it was due, not when the wait woke: every node and every run of the grid agrees on it.
        return cancellationToken.IsCancellationRequested ? null : new SampleTick(number, _startUtc + due * Interval);
    }
}

/// <summary>
/// The clock of a window replayed from a bundle: it reads the time it is set to (the window's start,
/// then its end), so the samplers' intervals and rates are the window's.
/// </summary>
public sealed class WindowTime : TimeProvider
{
    public WindowTime(DateTime now) => Now = now;

    /// <summary>The time every reading is taken at now (UTC).</summary>
    public DateTime Now { get; set; }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Now.Ticks;

    public override DateTimeOffset GetUtcNow() => new(DateTime.SpecifyKind(Now, DateTimeKind.Utc));
}
