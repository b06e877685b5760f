namespace CalicoBpf.Sampling;

/// <summary>
/// One node's readings of a series of counters: each reading is read to the end, then observed counter
/// by counter. The time of a reading is the middle of its read, on one monotonic clock, so a rate
/// divides by the time between two readings and not by the interval asked for (a remote read takes an
/// exec round trip). A read that fails leaves the series as it was.
/// </summary>
internal sealed class SeriesReading<TKey> where TKey : notnull
{
    private readonly CounterSeries<TKey> _series = new();
    private readonly TimeProvider _time;
    private long? _lastMiddle;

    public SeriesReading(TimeProvider? time) => _time = time ?? TimeProvider.System;

    /// <summary>The time since the last reading's middle; null for the first (the baseline).</summary>
    public TimeSpan? Interval { get; private set; }

    /// <summary>Reads <paramref name="reading"/> to the end and starts observing it.</summary>
    public List<T> Read<T>(IEnumerable<T> reading)
    {
        long start = _time.GetTimestamp();
        List<T> items;
        try
        {
            items = reading.ToList();
        }
        catch
        {
            _series.AbandonReading();
            throw;
        }

        long end = _time.GetTimestamp();
        long middle = start + (end - start) / 2;
        Interval = _lastMiddle is { } last ? _time.GetElapsedTime(last, middle) : null;
        _lastMiddle = middle;
        return items;
    }

    /// <summary>How the counter changed; null when there is nothing to write (the baseline, or no change and <paramref name="includeUnchanged"/> is false).</summary>
    public (CounterChange Change, TimeSpan Interval, double Rate)? Observe(TKey key, ulong value, long generation, bool includeUnchanged)
    {
        CounterChange change = _series.Observe(key, value, generation);
        if (change.Baseline || Interval is not { } span || (!includeUnchanged && change.Delta == 0 && !change.Reset))
        {
            return null;
        }

        return (change, span, span > TimeSpan.Zero ? change.Delta / span.TotalSeconds : 0);
    }

    public void End() => _series.EndReading();
}

/// <summary>
/// One node's cali_counters read sample after sample (Get-BpfCounter -SampleInterval): per interface,
/// hook and counter, the rise since the sample before and its rate. Counters are keyed by interface
/// name, hook and Calico's counter id; the ifindex is the generation, so a recreated interface is a reset.
/// </summary>
public sealed class CounterSampler
{
    private readonly SeriesReading<(string Interface, PolicyHook Hook, string Id)> _series;

    public CounterSampler(TimeProvider? time = null) => _series = new(time);

    /// <summary>
    /// Reads <paramref name="reading"/> (CounterReader.Read of the node) and returns what moved since the
    /// reading before, every counter with <paramref name="includeUnchanged"/>; nothing for the baseline.
    /// A reading that fails leaves the series as it was.
    /// </summary>
    public IReadOnlyList<CounterSample> Sample(IEnumerable<InterfaceCounter> reading, SampleTick tick, bool includeUnchanged = false)
    {
        var samples = new List<CounterSample>();
        foreach (InterfaceCounter c in _series.Read(reading))
        {
            Add(c, PolicyHook.Ingress, c.Ingress);
            Add(c, PolicyHook.Egress, c.Egress);
            Add(c, PolicyHook.Xdp, c.Xdp);
        }

        _series.End();
        return samples;

        void Add(InterfaceCounter c, PolicyHook hook, ulong? value)
        {
            if (value is not { } v)
            {
                return;
            }

            if (_series.Observe((c.Interface, hook, c.Id), v, c.IfIndex, includeUnchanged) is not (CounterChange change, TimeSpan span, double rate))
            {
                return;
            }

            samples.Add(new CounterSample
            {
                Node = c.Node,
                Sample = tick.Number,
                Timestamp = tick.Timestamp,
                IntervalValue = span,
                Interface = c.Interface,
                IfIndex = c.IfIndex,
                Hook = hook,
                Category = c.Category,
                Name = c.Name,
                Id = c.Id,
                Value = v,
                Delta = change.Delta,
                Rate = rate,
                Reset = change.Reset,
            });
        }
    }
}

/// <summary>
/// One node's rule hit counters (cali_rule_ctrs, through Felix's policy debug files) read sample after
/// sample (Get-BpfPolicy -SampleInterval). Calico keeps one counter per rule match id for the whole node
/// (felix/bpf: the id does not include the interface), so a counter is keyed by family and match id: a
/// rule that appears on a new interface (a new pod under an existing policy) is not a reset, and every
/// interface that has the rule shows the counter's one rise. Rules without a counter have nothing to sample.
/// </summary>
public sealed class PolicyRuleSampler
{
    private readonly SeriesReading<(bool IPv6, ulong MatchId)> _series;

    public PolicyRuleSampler(TimeProvider? time = null) => _series = new(time);

    /// <summary>As <see cref="CounterSampler.Sample"/>, for the rules of <paramref name="reading"/>.</summary>
    public IReadOnlyList<PolicyRuleSample> Sample(IEnumerable<PolicyRule> reading, SampleTick tick, bool includeUnchanged = false)
    {
        var samples = new List<PolicyRuleSample>();
        foreach (PolicyRule r in _series.Read(reading))
        {
            if (r.MatchId is not { } id || r.HitCount is not { } hits
                || _series.Observe((r.IPv6, id), hits, 0, includeUnchanged) is not (CounterChange change, TimeSpan span, double rate))
            {
                continue;
            }

            samples.Add(new PolicyRuleSample
            {
                Node = r.Node,
                Sample = tick.Number,
                Timestamp = tick.Timestamp,
                IntervalValue = span,
                Interface = r.Interface,
                Hook = r.Hook,
                IPv6 = r.IPv6,
                Tier = r.Tier,
                Policy = r.Policy,
                PolicyKind = r.PolicyKind,
                Index = r.Index,
                Rule = r.Rule,
                Action = r.Action,
                MatchId = id,
                Value = hits,
                Delta = change.Delta,
                Rate = rate,
                Reset = change.Reset,
            });
        }

        _series.End();
        return samples;
    }
}
