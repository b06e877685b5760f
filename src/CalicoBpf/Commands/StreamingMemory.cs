namespace CalicoBpf.Commands;

/// <summary>
/// Keeps what streaming a big table adds to the pwsh process small whatever the machine. .NET sizes
/// its youngest generation's budget from the CPU's cache (12 MB on this project's 32 MB-L3 machines,
/// 64 MB and more on larger server CPUs), and a stream of short-lived objects fills that whole budget
/// before each collection: the process grew by the budget (76 MB on the Xeon where issue 19 was
/// measured, 65 MB here with DOTNET_GCgen0size=0x4000000). Every 1,024 objects written, when more than
/// <see cref="Budget"/> was allocated since the last gen0 collection, one is made: a gen0 collection of
/// objects already passed down the pipeline costs well under a millisecond. Where the GC's own budget
/// is smaller, its collections come first and this never collects.
/// </summary>
internal static class StreamingMemory
{
    internal const long Budget = 16L << 20;

    [ThreadStatic]
    private static int t_written;

    private static long s_mark;
    private static int s_gen0 = -1;

    /// <summary>Called for each object a streaming cmdlet writes.</summary>
    public static void Written()
    {
        if ((++t_written & 1023) != 0)
        {
            return;
        }

        int gen0 = GC.CollectionCount(0);
        long allocated = GC.GetTotalAllocatedBytes(precise: false);
        if (gen0 != Volatile.Read(ref s_gen0))
        {
            Volatile.Write(ref s_gen0, gen0);
            Volatile.Write(ref s_mark, allocated);
            return;
        }

        if (allocated - Volatile.Read(ref s_mark) < Budget)
        {
            return;
        }

        GC.Collect(0, GCCollectionMode.Forced, blocking: true, compacting: false);
        Volatile.Write(ref s_gen0, GC.CollectionCount(0));
        Volatile.Write(ref s_mark, allocated);
    }
}
