namespace CalicoBpf.Tests;

public class BpfMapKernelTests
{
    [SkippableFact]
    public void Batch_and_key_by_key_reads_return_every_entry_once()
    {
        using var fs = new BpfFsScope();
        using BpfMap map = fs.CreatePinned(BpfMapType.Hash, 8, 16, 20000, "cali_test");
        byte[] value = new byte[16];
        for (int i = 0; i < 10000; i++)
        {
            BitConverter.TryWriteBytes(value, (long)i * 3);
            map.Update(BitConverter.GetBytes((long)i), value);
        }

        foreach (MapReadMode mode in new[] { MapReadMode.Batch, MapReadMode.KeyByKey })
        {
            var seen = new HashSet<long>();
            int largest = 0;
            foreach (RawEntryBatch b in map.ReadEntries(512, mode))
            {
                largest = Math.Max(largest, b.Count);
                for (int i = 0; i < b.Count; i++)
                {
                    long k = BitConverter.ToInt64(b.Key(i));
                    Assert.True(seen.Add(k), $"{mode}: key {k} twice");
                    Assert.Equal(k * 3, BitConverter.ToInt64(b.Value(i)));
                }
            }

            Assert.Equal(10000, seen.Count);
            if (mode == MapReadMode.Batch)
            {
                // The batch lookups start at 256 entries and grow to the size asked for.
                Assert.InRange(largest, 257, 512);
            }
        }

        Assert.Equal(10000, map.CountEntries());
    }

    [SkippableFact]
    public void Lpm_trie_falls_back_to_key_by_key()
    {
        using var fs = new BpfFsScope();
        using BpfMap map = fs.CreatePinned(BpfMapType.LpmTrie, 8, 8, 100, "cali_v4_routes", BpfSyscall.BPF_F_NO_PREALLOC);
        for (int i = 0; i < 50; i++)
        {
            byte[] key = { 32, 0, 0, 0, 10, 65, 0, (byte)i };
            map.Update(key, BitConverter.GetBytes((long)i));
        }

        int n = map.ReadEntries(16).Sum(b => b.Count);
        Assert.Equal(50, n);
    }

    [SkippableFact]
    public void Per_cpu_values_hold_one_rounded_copy_per_possible_cpu()
    {
        using var fs = new BpfFsScope();
        using BpfMap map = fs.CreatePinned(BpfMapType.PerCpuHash, 8, 12, 10, "cali_pc");
        int cpus = KernelInfo.PossibleCpuCount;
        byte[] value = new byte[16 * cpus];
        for (int c = 0; c < cpus; c++)
        {
            value[c * 16] = (byte)(c + 1);
        }

        map.Update(new byte[8], value);
        RawEntryBatch b = map.ReadEntries().Single();
        Assert.Equal(16 * cpus, b.ValueStride);
        Assert.Equal(16, b.PerCpuSlot);
        for (int c = 0; c < cpus; c++)
        {
            Assert.Equal(c + 1, b.Value(0)[c * 16]);
        }
    }

    [SkippableFact]
    public void Errors_become_typed_exceptions()
    {
        using var fs = new BpfFsScope();
        var missing = Assert.Throws<BpfObjectNotFoundException>(() => BpfMap.OpenPinned(Path.Combine(fs.PinDirectory, "cali_nothing")));
        Assert.Contains("cali_nothing", missing.Message);
        Assert.Equal(Errno.ENOENT, missing.Errno);

        using BpfMap map = fs.CreatePinned(BpfMapType.Hash, 4, 4, 4, "cali_small");
        Assert.Throws<ArgumentException>(() => map.Update(new byte[3], new byte[4]));
        for (int i = 0; i < 4; i++)
        {
            map.Update(BitConverter.GetBytes(i), new byte[4]);
        }

        // A full hash map refuses a fifth key with E2BIG.
        var full = Assert.ThrowsAny<BpfException>(() => map.Update(BitConverter.GetBytes(9), new byte[4]));
        Assert.Equal(Errno.E2BIG, full.Errno);
        Assert.True(map.Delete(BitConverter.GetBytes(0)));
        Assert.False(map.Delete(BitConverter.GetBytes(0)));
    }

    [SkippableFact]
    public void Read_stops_when_cancelled()
    {
        using var fs = new BpfFsScope();
        using BpfMap map = fs.CreatePinned(BpfMapType.Hash, 8, 8, 5000, "cali_cancel");
        for (long i = 0; i < 5000; i++)
        {
            map.Update(BitConverter.GetBytes(i), BitConverter.GetBytes(i));
        }

        using var cts = new CancellationTokenSource();
        int batches = 0;
        Assert.Throws<OperationCanceledException>(() =>
        {
            foreach (RawEntryBatch _ in map.ReadEntries(100, MapReadMode.Auto, cts.Token))
            {
                batches++;
                cts.Cancel();
            }
        });
        Assert.Equal(1, batches);
    }
}

public class BpfMapChurnTests
{
    [SkippableFact]
    public void Key_by_key_restarts_safely_when_the_previous_key_vanishes()
    {
        using var fs = new BpfFsScope();
        using BpfMap map = fs.CreatePinned(BpfMapType.Hash, 8, 8, 2000, "cali_churn");
        for (long i = 0; i < 1000; i++)
        {
            map.Update(BitConverter.GetBytes(i), BitConverter.GetBytes(i));
        }

        var read = new List<long>();
        var deletedUnread = new HashSet<long>();
        bool churned = false;
        foreach (RawEntryBatch b in map.ReadEntries(10, MapReadMode.KeyByKey))
        {
            for (int i = 0; i < b.Count; i++)
            {
                read.Add(BitConverter.ToInt64(b.Key(i)));
            }

            if (!churned)
            {
                // The key the walk continues from disappears (the kernel then restarts from the first
                // key), and so do a few keys not read yet.
                churned = true;
                Assert.True(map.Delete(BitConverter.GetBytes(read[^1])));
                foreach (long k in Enumerable.Range(0, 1000).Select(x => (long)x).Except(read).Take(5))
                {
                    Assert.True(map.Delete(BitConverter.GetBytes(k)));
                    deletedUnread.Add(k);
                }
            }
        }

        Assert.Equal(read.Count, read.Distinct().Count());
        Assert.Equal(Enumerable.Range(0, 1000).Select(x => (long)x).Except(deletedUnread).OrderBy(x => x), read.OrderBy(x => x));
    }

    [SkippableFact]
    public void Batch_buffer_grows_when_a_bucket_holds_more_than_it()
    {
        using var fs = new BpfFsScope();
        using BpfMap map = fs.CreatePinned(BpfMapType.Hash, 8, 8, 4096, "cali_grow");
        for (long i = 0; i < 3000; i++)
        {
            map.Update(BitConverter.GetBytes(i), BitConverter.GetBytes(i));
        }

        // With room for one entry, any bucket holding two makes the kernel answer ENOSPC.
        var seen = new HashSet<long>();
        int maxCapacity = 0;
        foreach (RawEntryBatch b in map.ReadEntries(1, MapReadMode.Batch))
        {
            maxCapacity = Math.Max(maxCapacity, b.Capacity);
            for (int i = 0; i < b.Count; i++)
            {
                Assert.True(seen.Add(BitConverter.ToInt64(b.Key(i))));
            }
        }

        Assert.Equal(3000, seen.Count);
        Assert.True(maxCapacity > 1, "the buffer never grew");
    }
}
