namespace CalicoBpf.Sampling;

/// <summary>What one counter did since the reading before: how much it rose, or that it started again.</summary>
/// <param name="Delta">The rise since the last reading; after a reset, the value now (what was counted since the reset, at least).</param>
/// <param name="Reset">
/// The counter went down (Clear-BpfCounter, a Felix restart), its interface was recreated, or it was not
/// there at the last reading: its rise cannot be known, so Delta is the value now and never negative.
/// </param>
/// <param name="Baseline">The first reading of the series: there is nothing to compare with, so no sample.</param>
public readonly record struct CounterChange(ulong Delta, bool Reset, bool Baseline);

/// <summary>
/// Successive readings of monotonic counters by key. Each reading gives, per counter, its rise since the
/// reading before (<see cref="CounterChange"/>); a counter that went down, or whose generation changed
/// (an interface recreated under the same name has a new ifindex), is a reset. A key missing from a
/// reading is forgotten, so memory follows what the node has now.
/// </summary>
/// <typeparam name="TKey">What names one counter (interface, hook, counter id).</typeparam>
public sealed class CounterSeries<TKey> where TKey : notnull
{
    private Dictionary<TKey, (ulong Value, long Generation)> _last = new();
    private Dictionary<TKey, (ulong Value, long Generation)> _next = new();
    private bool _hasBaseline;

    /// <summary>How many counters the last complete reading held.</summary>
    public int Count => _last.Count;

    /// <summary>Records <paramref name="value"/> for <paramref name="key"/> in the reading under way and says how it changed.</summary>
    public CounterChange Observe(TKey key, ulong value, long generation = 0)
    {
        _next[key] = (value, generation);
        if (!_hasBaseline)
        {
            return new CounterChange(0, false, true);
        }

        if (!_last.TryGetValue(key, out (ulong Value, long Generation) last) || last.Generation != generation || value < last.Value)
        {
            return new CounterChange(value, true, false);
        }

        return new CounterChange(value - last.Value, false, false);
    }

    /// <summary>Ends the reading under way: it becomes what the next one is compared with.</summary>
    public void EndReading()
    {
        (_last, _next) = (_next, _last);
        _next.Clear();
        _hasBaseline = true;
    }

    /// <summary>Drops the reading under way (it failed part way): the next reading is compared with the last complete one.</summary>
    public void AbandonReading() => _next.Clear();
}
