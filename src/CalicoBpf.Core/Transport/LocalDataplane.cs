using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>The dataplane of the machine this process runs on, read through bpf(2) and rtnetlink.</summary>
public sealed class LocalDataplane : INodeDataplane
{
    /// <param name="release">The node's Calico release (-CalicoVersion); null: inferred from the pinned maps.</param>
    public LocalDataplane(string? pinDirectory = null, string? nodeName = null, CalicoRelease? release = null)
    {
        PinDirectory = string.IsNullOrEmpty(pinDirectory) ? NodePaths.CalicoPinDirectory : pinDirectory;
        Node = string.IsNullOrEmpty(nodeName) ? LocalNodeName() : nodeName;
        GivenRelease = release is null ? null : NodeRelease.Given(release);
    }

    public string Node { get; }

    public NodeRelease? GivenRelease { get; }

    public string PinDirectory { get; }

    /// <summary>Calico names a node after NODENAME when set, else the host name.</summary>
    public static string LocalNodeName()
    {
        string? env = Environment.GetEnvironmentVariable("NODENAME");
        return string.IsNullOrWhiteSpace(env) ? System.Net.Dns.GetHostName() : env.Trim();
    }

    /// <summary>
    /// Checks, in order, that maps can be read here at all: Linux, root, the pin directory, a bpffs
    /// under it; then lists it. Throws one <see cref="BpfEnvironmentException"/> naming what is missing.
    /// </summary>
    public IReadOnlyList<string> ListPins()
    {
        KernelInfo.EnsureLinux();
        if (!KernelInfo.IsRoot)
        {
            throw new BpfEnvironmentException(
                "Reading Calico's BPF maps needs root (CAP_BPF and CAP_SYS_ADMIN). Run pwsh as root (sudo pwsh), or use -Node to read a node through Kubernetes.",
                BpfEnvironmentProblem.NotRoot);
        }

        if (File.Exists(PinDirectory))
        {
            bool pin = KernelInfo.IsOnBpfFs(Path.GetDirectoryName(PinDirectory) ?? "/");
            throw new BpfEnvironmentException(
                $"{PinDirectory} is a {(pin ? "pinned object (a map's pin?)" : "file")}, not a directory: -PinPath takes the directory the maps are pinned in" +
                $"{(pin ? $" ({Path.GetDirectoryName(PinDirectory)} here)" : string.Empty)}; to read one map, give its directory and the map's name (Get-BpfMap -PinPath DIR NAME).",
                BpfEnvironmentProblem.NotADirectory, PinDirectory);
        }

        if (!Directory.Exists(PinDirectory))
        {
            string why = Directory.Exists("/sys/fs/bpf") && KernelInfo.IsOnBpfFs("/sys/fs/bpf")
                ? "bpffs is mounted but Calico has pinned nothing there: calico-node is not running in eBPF mode on this node (check bpfEnabled and the calico-node log)."
                : "no bpffs is mounted at /sys/fs/bpf: this node does not run Calico's eBPF dataplane.";
            throw new BpfEnvironmentException(
                $"The pin directory {PinDirectory} does not exist; {why} Use -PinPath for maps pinned elsewhere, or -Node to read another node.",
                BpfEnvironmentProblem.NoBpfFs, PinDirectory);
        }

        if (!KernelInfo.IsOnBpfFs(PinDirectory))
        {
            throw new BpfEnvironmentException(
                $"{PinDirectory} is not on a bpffs mount, so it cannot hold pinned BPF maps. Mount one (mount -t bpf bpf /sys/fs/bpf) or point -PinPath at a bpffs directory.",
                BpfEnvironmentProblem.NoBpfFs, PinDirectory);
        }

        return Directory.EnumerateFileSystemEntries(PinDirectory).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();
    }

    public IMapReader OpenMap(string pinName) =>
        new LocalMapReader(BpfMap.OpenPinned(Path.Combine(PinDirectory, pinName)));

    public IMapReader OpenMapToDump(string pinName) => OpenMap(pinName);

    public void ExpectDump(string baseName)
    {
    }

    public IMapWriter OpenMapForWrite(string pinName) =>
        new LocalMapReader(BpfMap.OpenPinned(Path.Combine(PinDirectory, pinName), writable: true));

    public ClockSample SampleClock() => KernelInfo.SampleClocks().Anchored("local:" + Node);

    public IReadOnlyDictionary<int, NetworkLink> ListLinks() => NetLink.ListLinks();

    public IReadOnlyList<QdiscStatistic> ListQdiscs() => QdiscStatistics.From(Node, NetLink.ListLinks(), TrafficControl.ListQdiscs());

    public AttachmentListing ListAttachments() => AttachmentReader.ReadLocal(Node);

    public void PrepareToOpen(IReadOnlyList<string> pinNames)
    {
    }

    public IReadOnlyList<long?> CountEntries(IReadOnlyList<IMapReader> maps, CancellationToken cancellationToken) =>
        maps.Select(m => m.CountEntries(cancellationToken)).ToList();

    public IReadOnlyList<string>? ListDirectory(string path) =>
        Directory.Exists(path) ? Directory.EnumerateFileSystemEntries(path).Select(p => Path.GetFileName(p)).OrderBy(n => n, StringComparer.Ordinal).ToList() : null;

    public string? ReadTextFile(string path) => File.Exists(path) ? File.ReadAllText(path) : null;

    public IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken)
    {
        string dir = TraceFs.RequireTracingDirectory(tracingDirectory);
        return follow ? TraceFs.Follow(dir, cancellationToken) : TraceFs.ReadSnapshot(dir, cancellationToken);
    }

    public long? TraceClockOffset(string? tracingDirectory, CancellationToken cancellationToken) =>
        TraceFs.ClockOffset(TraceFs.RequireTracingDirectory(tracingDirectory));

    public string? ReadEnvironment(string name) => Environment.GetEnvironmentVariable(name);

    public ProgramRunWindow MeasurePrograms(IReadOnlyCollection<uint> programIds, TimeSpan window, CancellationToken cancellationToken)
    {
        const string sysctl = "/proc/sys/kernel/bpf_stats_enabled";
        bool were = File.Exists(sysctl) && File.ReadAllText(sysctl).Trim() == "1";
        using IDisposable statistics = BpfPrograms.EnableRunTimeStatistics();
        Dictionary<uint, ProgramRun> Read() => programIds
            .Select(id => (Id: id, Run: BpfPrograms.RunStatistics(id)))
            .Where(p => p.Run is not null)
            .ToDictionary(p => p.Id, p => new ProgramRun(p.Run!.Value.RunTimeNanoseconds, p.Run.Value.RunCount));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Dictionary<uint, ProgramRun> before = Read();
        TimeSpan start = clock.Elapsed;
        if (cancellationToken.WaitHandle.WaitOne(window))
        {
            cancellationToken.ThrowIfCancellationRequested();
        }

        Dictionary<uint, ProgramRun> after = Read();
        return new ProgramRunWindow(before, after, clock.Elapsed - start, were);
    }

    public CgroupProgramListing ListCgroupPrograms(string cgroupPath, string linkDirectory)
    {
        if (!Directory.Exists(cgroupPath))
        {
            throw new DirectoryNotFoundException($"The cgroup {cgroupPath} does not exist.");
        }

        ulong bootNow = KernelInfo.BootTimeNanoseconds();
        DateTime utcNow = DateTime.UtcNow;
        var attached = new List<CgroupAttachment>();
        foreach (CgroupAttachType type in Enum.GetValues<CgroupAttachType>())
        {
            foreach (uint id in BpfPrograms.QueryCgroup(cgroupPath, (uint)type))
            {
                BpfProgramDescriptor p;
                try
                {
                    p = BpfPrograms.Describe(id);
                }
                catch (BpfObjectNotFoundException)
                {
                    continue; // detached meanwhile
                }

                // To the second, as bpftool's loaded_at: the boot-clock conversion jitters below that,
                // and a remote node must give the same object as a local one.
                DateTime? loaded = null;
                if (p.LoadTimeNanoseconds > 0 && p.LoadTimeNanoseconds <= bootNow)
                {
                    DateTime at = utcNow - TimeSpan.FromTicks((long)((bootNow - p.LoadTimeNanoseconds) / 100));
                    loaded = new DateTime(at.Ticks - (at.Ticks % TimeSpan.TicksPerSecond), DateTimeKind.Utc);
                }

                attached.Add(new CgroupAttachment(type, id, p.Name, p.Tag, loaded));
            }
        }

        return new CgroupProgramListing(cgroupPath, attached, LinkPins(linkDirectory));
    }

    /// <summary>The bpf links pinned in a directory with the program each runs, by path.</summary>
    private static List<LinkPin> LinkPins(string linkDirectory)
    {
        var result = new List<LinkPin>();
        if (!Directory.Exists(linkDirectory))
        {
            return result;
        }

        foreach (string path in Directory.EnumerateFileSystemEntries(linkDirectory).OrderBy(p => p, StringComparer.Ordinal))
        {
            try
            {
                result.Add(new LinkPin(BpfPrograms.DescribeLink(path).ProgramId, path));
            }
            catch (BpfException)
            {
                // Not a link (or gone).
            }
        }

        return result;
    }

    public void RemoveConnectTimeProgramArray(string path)
    {
        using (BpfMap map = BpfMap.OpenPinned(path, writable: true))
        {
            map.Delete(new byte[map.Descriptor.KeySize]);
        }

        File.Delete(path);
    }

    public void RemoveConnectTimeLink(string path)
    {
        try
        {
            BpfPrograms.DetachLink(path);
        }
        catch (BpfInvalidArgumentException)
        {
            // A pin that is not a link: removing the pin is all calico-bpf does with it.
        }

        File.Delete(path);
    }

    private sealed class LocalMapReader : IMapWriter
    {
        private readonly BpfMap _map;

        public LocalMapReader(BpfMap map) => _map = map;

        public BpfMapDescriptor Descriptor => _map.Descriptor;

        public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken) =>
            _map.ReadEntries(4096, MapReadMode.Auto, cancellationToken);

        public long? CountEntries(CancellationToken cancellationToken) =>
            _map.Descriptor.Type.IsIterable() ? _map.CountEntries(cancellationToken) : null;

        public int ValueStride => _map.Descriptor.ValueStride(KernelInfo.PossibleCpuCount);

        public bool Delete(ReadOnlySpan<byte> key) => _map.Delete(key);

        public int DeleteMany(IReadOnlyList<byte[]> keys) => keys.Count(k => _map.Delete(k));

        public bool UpdateExisting(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            try
            {
                _map.Update(key, value, BpfUpdateFlags.Exist);
                return true;
            }
            catch (BpfObjectNotFoundException)
            {
                return false;
            }
        }

        public void Dispose() => _map.Dispose();
    }
}
