namespace CalicoBpf;

/// <summary>A program's run statistics as the kernel keeps them (bpf_prog_info run_cnt and run_time_ns).</summary>
public readonly record struct ProgramRun(ulong RunTimeNanoseconds, ulong RunCount);

/// <summary>
/// What a node's programs did over a window: their run statistics at its start and at its end (by
/// program id; a program loaded or unloaded meanwhile is in one of them only), the time between the
/// two reads, and whether the statistics were on before (they are set back to that afterwards).
/// </summary>
public sealed record ProgramRunWindow(IReadOnlyDictionary<uint, ProgramRun> Before, IReadOnlyDictionary<uint, ProgramRun> After, TimeSpan Elapsed, bool WereEnabled);
