namespace CalicoBpf.Interop;

/// <summary>
/// The kernel trace buffer in tracefs, wherever it is mounted: a tracefs mount, or a debugfs mount's
/// tracing/ directory. Snapshots read the trace file (consuming nothing); following reads trace_pipe
/// (consuming what it reads), as tc exec bpf debug does.
/// </summary>
public static unsafe class TraceFs
{
    /// <summary>
    /// Where the trace buffer is, from a mounts table (/proc/self/mounts): the first tracefs mount, else
    /// the tracing/ directory of a debugfs mount; only those where <paramref name="hasTracePipe"/> says
    /// the directory has a trace_pipe. Null when none. One rule for this machine and for a node's
    /// calico-node container (whose mounts are read through exec).
    /// </summary>
    public static string? TracingDirectory(string mounts, Func<string, bool> hasTracePipe)
    {
        string? debugfs = null;
        foreach (string line in mounts.Split('\n'))
        {
            string[] f = line.Split(' ');
            if (f.Length < 3)
            {
                continue;
            }

            string path = f[1].Replace("\\040", " ", StringComparison.Ordinal);
            if (f[2] == "tracefs" && hasTracePipe(path))
            {
                return path;
            }

            if (f[2] == "debugfs" && debugfs is null && hasTracePipe(Path.Combine(path, "tracing")))
            {
                debugfs = Path.Combine(path, "tracing");
            }
        }

        return debugfs;
    }

    /// <summary>This machine's tracing directory (<see cref="TracingDirectory"/>), or null when neither tracefs nor debugfs is mounted.</summary>
    public static string? FindTracingDirectory(string mountsFile = "/proc/self/mounts") =>
        TracingDirectory(File.ReadAllText(mountsFile), HasTracePipe);

    private static bool HasTracePipe(string directory) => File.Exists(Path.Combine(directory, "trace_pipe"));

    /// <summary>
    /// The tracing directory to read: <paramref name="given"/> (-TracingPath) when it is one, else this
    /// machine's. Throws naming the real cause: a given path that is missing, a file or no tracefs; a
    /// trace buffer that is mounted but readable by root only (tracefs is mode 700); or none mounted.
    /// </summary>
    public static string RequireTracingDirectory(string? given = null, string mountsFile = "/proc/self/mounts")
    {
        if (given is not null)
        {
            if ((Directory.Exists(given) && Unreadable(given)) || (!Directory.Exists(given) && !File.Exists(given) && UnreadableAncestor(given) is not null))
            {
                throw NotRoot(given);
            }

            string? why = File.Exists(given) ? "is a file, not a directory"
                : !Directory.Exists(given) ? "does not exist"
                : !File.Exists(Path.Combine(given, "trace")) ? "has no trace file: it is not a tracefs directory"
                : null;
            if (why is not null)
            {
                throw new BpfEnvironmentException(
                    $"-TracingPath {given} {why}. Give the directory tracefs is mounted at (/sys/kernel/tracing, or /sys/kernel/debug/tracing under debugfs), or leave -TracingPath out to find it.",
                    BpfEnvironmentProblem.NotTracingDirectory, given);
            }

            return given;
        }

        string mounts = File.ReadAllText(mountsFile);
        if (TracingDirectory(mounts, HasTracePipe) is { } found)
        {
            return found;
        }

        // Mounted, but its trace_pipe was not visible: tracefs (and debugfs, which holds it at tracing/)
        // let only root in, so a mount this user cannot enter is the cause, not a missing mount.
        string? mounted = TracingDirectory(mounts, d => Directory.Exists(d) ? Unreadable(d) : UnreadableAncestor(d) is not null);
        if (mounted is not null)
        {
            throw NotRoot(Directory.Exists(mounted) ? mounted : UnreadableAncestor(mounted) ?? mounted);
        }

        throw new BpfEnvironmentException(
            "The kernel trace buffer is not reachable: neither tracefs nor debugfs is mounted. Mount it (mount -t tracefs nodev /sys/kernel/tracing) and try again.",
            BpfEnvironmentProblem.NoTraceFs, "/sys/kernel/tracing");
    }

    private static bool Unreadable(string directory)
    {
        try
        {
            _ = Directory.EnumerateFileSystemEntries(directory).Any();
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>The nearest existing directory above <paramref name="path"/> that this user cannot list; null when there is none.</summary>
    private static string? UnreadableAncestor(string path)
    {
        for (string? d = Path.GetDirectoryName(Path.GetFullPath(path)); d is not null; d = Path.GetDirectoryName(d))
        {
            if (Directory.Exists(d))
            {
                return Unreadable(d) ? d : null;
            }
        }

        return null;
    }

    private static BpfEnvironmentException NotRoot(string directory) => new(
        $"The kernel trace buffer ({directory}) is readable by root only. Run pwsh as root (sudo pwsh), or use -Node to read a node through Kubernetes.",
        BpfEnvironmentProblem.NotRoot, directory);

    /// <summary>
    /// How far the trace buffer's clock runs ahead of CLOCK_MONOTONIC, in nanoseconds (negative: behind).
    /// The buffer stamps its lines with its own clock (trace_clock, "local" by default: sched_clock), which
    /// on a virtual machine may be seconds from the monotonic clock the node's other readings use. Its
    /// "now ts" in per_cpu/cpu0/stats is read between two readings of the monotonic clock, the closest of
    /// three tries. Null when the file is not there or its clock does not count nanoseconds (counter,
    /// x86-tsc). Reads only.
    /// </summary>
    public static long? ClockOffset(string tracingDirectory)
    {
        string stats = Path.Combine(tracingDirectory, "per_cpu", "cpu0", "stats");
        long? best = null;
        ulong bestSpan = ulong.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            ulong before = KernelInfo.MonotonicNanoseconds();
            string text;
            try
            {
                text = File.ReadAllText(stats);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null;
            }

            ulong after = KernelInfo.MonotonicNanoseconds();
            if (NowTimestamp(text) is not { } now)
            {
                return null;
            }

            if (after - before < bestSpan)
            {
                bestSpan = after - before;
                best = (long)now - (long)(before + ((after - before) / 2));
            }
        }

        return best;
    }

    /// <summary>
    /// The trace clock's "now ts: S.UUUUUU" of a per-CPU stats file, in nanoseconds; null when there is none
    /// or it is a bare count (a clock that is not in nanoseconds prints no fraction).
    /// </summary>
    public static ulong? NowTimestamp(string stats)
    {
        foreach (string line in stats.Split('\n'))
        {
            if (!line.StartsWith("now ts:", StringComparison.Ordinal))
            {
                continue;
            }

            string[] parts = line["now ts:".Length..].Trim().Split('.');
            return parts.Length == 2 && parts[1].Length == 6
                && ulong.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong seconds)
                && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong micros)
                ? (seconds * 1_000_000_000UL) + (micros * 1000UL)
                : null;
        }

        return null;
    }

    /// <summary>The lines in the trace buffer now (comment lines skipped); reading consumes nothing.</summary>
    public static IEnumerable<string> ReadSnapshot(string tracingDirectory, CancellationToken cancellationToken = default)
    {
        using var reader = new StreamReader(Path.Combine(tracingDirectory, "trace"), Encoding.UTF8);
        string? line;
        long n = 0;
        while ((line = reader.ReadLine()) is not null)
        {
            if ((++n & 1023) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            if (line.Length > 0 && line[0] != '#')
            {
                yield return line;
            }
        }
    }

    /// <summary>Streams trace_pipe line by line until cancelled; checks the token at least every 200 ms.</summary>
    public static IEnumerable<string> Follow(string tracingDirectory, CancellationToken cancellationToken)
    {
        string path = Path.Combine(tracingDirectory, "trace_pipe");
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            throw BpfException.FromErrno(Libc.LastErrno, "open", path);
        }

        try
        {
            byte[] buffer = new byte[64 * 1024];
            var pending = new StringBuilder();
            while (!cancellationToken.IsCancellationRequested)
            {
                int count = ReadSome(fd, buffer, path);
                if (count <= 0)
                {
                    continue;
                }

                pending.Append(Encoding.UTF8.GetString(buffer, 0, count));
                string text = pending.ToString();
                int last = text.LastIndexOf('\n');
                if (last < 0)
                {
                    continue;
                }

                pending.Clear().Append(text, last + 1, text.Length - last - 1);
                foreach (string line in text[..last].Split('\n'))
                {
                    if (line.Length > 0)
                    {
                        yield return line;
                    }
                }
            }
        }
        finally
        {
            Libc.close(fd);
        }
    }

    private static int ReadSome(int fd, byte[] buffer, string path)
    {
        var pfd = new Libc.PollFd { Fd = fd, Events = Libc.POLLIN };
        int ready = Libc.poll(&pfd, 1, 200);
        if (ready <= 0)
        {
            return 0;
        }

        fixed (byte* p = buffer)
        {
            nint n = Libc.read(fd, p, buffer.Length);
            if (n < 0)
            {
                int errno = Libc.LastErrno;
                if (errno is Errno.EAGAIN or Errno.EINTR)
                {
                    return 0;
                }

                throw BpfException.FromErrno(errno, "read", path);
            }

            return (int)n;
        }
    }
}
