namespace CalicoBpf.Interop;

/// <summary>Facts about the running kernel and process the readers need: CPUs, clocks, privileges, bpffs.</summary>
public static unsafe class KernelInfo
{
    /// <summary>statfs f_type of a bpffs mount.</summary>
    public const long BpfFsMagic = 0xCAFE4A11;

    private static readonly Lazy<int> PossibleCpus = new(() => ParseCpuList(File.ReadAllText("/sys/devices/system/cpu/possible")));

    /// <summary>Possible CPUs (not online ones): per-CPU maps return one value per possible CPU.</summary>
    public static int PossibleCpuCount => PossibleCpus.Value;

    /// <summary>Counts the CPUs in a kernel CPU list such as "0-3,8-11".</summary>
    public static int ParseCpuList(string text)
    {
        int count = 0;
        foreach (string part in text.Trim().Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int dash = part.IndexOf('-');
            if (dash < 0)
            {
                _ = int.Parse(part, System.Globalization.CultureInfo.InvariantCulture);
                count++;
            }
            else
            {
                int lo = int.Parse(part.AsSpan(0, dash), provider: System.Globalization.CultureInfo.InvariantCulture);
                int hi = int.Parse(part.AsSpan(dash + 1), provider: System.Globalization.CultureInfo.InvariantCulture);
                if (hi < lo)
                {
                    throw new FormatException($"CPU range '{part}' runs backwards.");
                }

                count += hi - lo + 1;
            }
        }

        if (count == 0)
        {
            throw new FormatException($"'{text.Trim()}' lists no CPU.");
        }

        return count;
    }

    /// <summary>CLOCK_MONOTONIC in nanoseconds: the clock bpf_ktime_get_ns() reads.</summary>
    public static ulong MonotonicNanoseconds()
    {
        EnsureLinux();
        Libc.Timespec ts;
        if (Libc.clock_gettime(Libc.CLOCK_MONOTONIC, &ts) != 0)
        {
            throw BpfException.FromErrno(Libc.LastErrno, "clock_gettime(CLOCK_MONOTONIC)", null);
        }

        return (ulong)ts.Seconds * 1_000_000_000UL + (ulong)ts.Nanoseconds;
    }

    /// <summary>CLOCK_BOOTTIME in nanoseconds (program load times use it).</summary>
    public static ulong BootTimeNanoseconds()
    {
        EnsureLinux();
        Libc.Timespec ts;
        if (Libc.clock_gettime(Libc.CLOCK_BOOTTIME, &ts) != 0)
        {
            throw BpfException.FromErrno(Libc.LastErrno, "clock_gettime(CLOCK_BOOTTIME)", null);
        }

        return (ulong)ts.Seconds * 1_000_000_000UL + (ulong)ts.Nanoseconds;
    }

    /// <summary>Samples the monotonic clock and wall time together, to turn map timestamps into UTC.</summary>
    public static ClockSample SampleClocks()
    {
        ulong mono = MonotonicNanoseconds();
        return new ClockSample(mono, DateTime.UtcNow);
    }

    public static bool IsLinux => RuntimeInformation.IsOSPlatform(OSPlatform.Linux);

    /// <summary>The running kernel's release (uname -r), from /proc/sys/kernel/osrelease.</summary>
    public static string Release => File.Exists("/proc/sys/kernel/osrelease") ? File.ReadAllText("/proc/sys/kernel/osrelease").Trim() : Environment.OSVersion.Version.ToString();

    public static bool IsRoot => IsLinux && Libc.geteuid() == 0;

    public static void EnsureLinux()
    {
        if (!IsLinux)
        {
            throw new BpfEnvironmentException(
                $"Reading BPF maps locally needs Linux; this is {RuntimeInformation.OSDescription}. Use -Node to read a remote node through Kubernetes.",
                BpfEnvironmentProblem.NotLinux);
        }
    }

    /// <summary>True when <paramref name="path"/> lies on a mounted bpffs.</summary>
    public static bool IsOnBpfFs(string path)
    {
        EnsureLinux();
        byte* buf = stackalloc byte[256];
        if (Libc.statfs(path, buf) != 0)
        {
            return false;
        }

        return *(long*)buf == BpfFsMagic;
    }

    /// <summary>Mounts a fresh bpffs instance (used by fixtures and the demo for a private pin area).</summary>
    public static void MountBpfFs(string target)
    {
        EnsureLinux();
        Directory.CreateDirectory(target);
        if (Libc.mount("bpf", target, "bpf", 0, 0) != 0)
        {
            throw BpfException.FromErrno(Libc.LastErrno, "mount -t bpf", target);
        }
    }

    /// <summary>Unmounts a bpffs instance; its pins go with it.</summary>
    public static void Unmount(string target)
    {
        EnsureLinux();
        if (Libc.umount2(target, Libc.MNT_DETACH) != 0)
        {
            throw BpfException.FromErrno(Libc.LastErrno, "umount", target);
        }
    }
}

/// <summary>The monotonic clock and UTC wall time sampled at one moment on one node.</summary>
public readonly record struct ClockSample(ulong MonotonicNanoseconds, DateTime UtcNow)
{
    /// <summary>Age of a bpf_ktime_get_ns() timestamp; small negatives (clock skew between reads) become zero.</summary>
    public TimeSpan AgeOf(ulong timestamp) =>
        timestamp >= MonotonicNanoseconds ? TimeSpan.Zero : TimeSpan.FromTicks((long)((MonotonicNanoseconds - timestamp) / 100));

    /// <summary>Wall-clock time (UTC) of a bpf_ktime_get_ns() timestamp: the anchored epoch plus it, else now less its age.</summary>
    public DateTime WallTimeOf(ulong timestamp) =>
        Epoch is { } epoch ? epoch + TimeSpan.FromTicks((long)(Math.Min(timestamp, MonotonicNanoseconds) / 100)) : UtcNow - AgeOf(timestamp);

    /// <summary>The wall-clock time of monotonic zero this sample is anchored to (<see cref="Anchored"/>); null: none.</summary>
    public DateTime? Epoch { get; init; }

    /// <summary>How far a node's wall-clock epoch may move before it is taken as a clock step (NTP, a resume) and anchored again.</summary>
    public static readonly TimeSpan EpochTolerance = TimeSpan.FromMilliseconds(50);

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTime> Epochs = new(StringComparer.Ordinal);

    /// <summary>
    /// This sample with the wall-clock time of monotonic zero (the epoch) that <paramref name="node"/>
    /// had at its first sample in this process, while the two agree within <see cref="EpochTolerance"/>.
    /// Two samples taken apart differ by the time between their two clock reads (microseconds here,
    /// milliseconds through exec), so without it an unchanged entry's LastSeen moved between reads.
    /// Ages are not touched: they come from the monotonic clock alone.
    /// </summary>
    public ClockSample Anchored(string node)
    {
        DateTime epoch = UtcNow - TimeSpan.FromTicks((long)(MonotonicNanoseconds / 100));
        DateTime anchored = Epochs.AddOrUpdate(node, epoch, (_, known) => (known - epoch).Duration() <= EpochTolerance ? known : epoch);
        return this with { UtcNow = anchored + TimeSpan.FromTicks((long)(MonotonicNanoseconds / 100)), Epoch = anchored };
    }
}
