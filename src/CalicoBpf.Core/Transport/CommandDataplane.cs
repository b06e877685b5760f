using System.Globalization;
using System.Text;
using System.Text.Json;
using CalicoBpf.Interop;
using CalicoBpf.Maps;

namespace CalicoBpf.Transport;

/// <summary>
/// A node read through the tools the calico-node image ships (bpftool, ip, tc, cat, sh) instead of
/// system calls: the transport of remote nodes. Raw bytes from bpftool's JSON go to the same
/// decoders as local mode, so an object read this way equals the local one field for field.
/// </summary>
public sealed class CommandDataplane : INodeDataplane, IDisposable
{
    private readonly ICommandRunner _runner;
    private readonly CancellationToken _cancellationToken;
    private Probe? _probe;
    private string? _expectedDump;
    private Prefetch? _prefetched;
    private readonly Dictionary<string, BpfMapDescriptor> _descriptors = new(StringComparer.Ordinal);

    /// <summary>A dump started by the probe's exec: the pin it chose, its description, the session streaming it.</summary>
    private sealed record Prefetch(string Path, BpfMapDescriptor Descriptor, DumpSession Session);

    /// <summary>What one exec learns about a node: its pins, possible CPUs and links.</summary>
    private sealed record Probe(string[] Pins, bool PinDirectoryMissing, string PinError, int PossibleCpus, IReadOnlyDictionary<int, NetworkLink> Links);

    private NodeRelease? _release;

    /// <param name="release">The node's release when known (-CalicoVersion, or the calico-node image: <see cref="NodeRelease.FromImage"/>); null: inferred from the pinned maps.</param>
    public CommandDataplane(ICommandRunner runner, string? pinDirectory = null, CancellationToken cancellationToken = default, NodeRelease? release = null)
    {
        _runner = runner;
        PinDirectory = string.IsNullOrEmpty(pinDirectory) ? MapCatalog.DefaultPinDirectory : pinDirectory;
        _cancellationToken = cancellationToken;
        _release = release;
    }

    public string Node => _runner.Node;

    public NodeRelease Release => _release ??= ReleaseInference.InferOrUnknown(ListMaps);

    public string PinDirectory { get; }

    /// <summary>Runs a command to the end and returns its stdout as text.</summary>
    internal string RunText(params string[] argv)
    {
        using ICommandRun run = _runner.Start(argv, _cancellationToken);
        using var reader = new StreamReader(run.StandardOutput, Encoding.UTF8);
        string text = reader.ReadToEnd();
        try
        {
            run.Complete();
        }
        catch (NodeCommandException ex) when (BpftoolJsonReader.ErrorMessage(Encoding.UTF8.GetBytes(text)) is { } error)
        {
            // bpftool -j reports its errors as {"error":"..."} on stdout.
            throw new NodeCommandException(ex.Node, argv, ex.ExitCode, (ex.StandardError + " " + error).Trim());
        }

        return text;
    }

    /// <summary>
    /// The head of a loop over paths given on stdin, a line each, $1 of them (never waiting for the end
    /// of stdin, which exec over v4 cannot signal): "...; done" closes it; the path is $p.
    /// </summary>
    private const string ReadPaths = "n=$1; while [ \"$n\" -gt 0 ] && IFS= read -r p; do n=$((n-1)); ";

    /// <summary>The stdin of a <see cref="ReadPaths"/> loop.</summary>
    private static byte[] PathLines(IEnumerable<string> paths) => Encoding.UTF8.GetBytes(string.Concat(paths.Select(p => p + "\n")));

    /// <summary>
    /// Runs a command with <paramref name="input"/> on its stdin to the end: its stdout, and its failure
    /// when it ended with an exit code of its own (a failure without an exit code, or a missing tool,
    /// throws as RunText does).
    /// </summary>
    internal (string Text, NodeCommandException? Failure) RunWithInput(IReadOnlyList<string> argv, ReadOnlyMemory<byte> input)
    {
        using ICommandRun run = _runner.Start(argv, _cancellationToken, input);
        using var reader = new StreamReader(run.StandardOutput, Encoding.UTF8);
        string text = reader.ReadToEnd();
        try
        {
            run.Complete();
            return (text, null);
        }
        catch (NodeCommandException ex) when (ex.ExitCode is > 0 and not 126 and not 127)
        {
            return (text, ex);
        }
    }

    /// <summary>
    /// Script prefixes that end a script with exit code 127 (a tool missing: error NodeToolMissing) and
    /// say which tool and why it is needed, when the node's calico-node container lacks it.
    /// </summary>
    internal const string NeedBpftool = "command -v bpftool >/dev/null || { echo 'bpftool is not on the PATH of the calico-node container: CalicoBpf reads and changes maps remotely with the bpftool of the calico-node image, which every image since Calico v3.13 carries; is this a modified image?' >&2; exit 127; }; ";

    /// <inheritdoc cref="NeedBpftool"/>
    internal const string NeedGzip = "command -v gzip >/dev/null || { echo 'gzip is not on the PATH of the calico-node container: CalicoBpf compresses map dumps on the node with the gzip of the calico-node image, which keeps it; is this a modified image?' >&2; exit 127; }; ";

    /// <summary>
    /// One exec instead of three: the pin directory's listing, the possible CPUs and the links
    /// (each exec costs a round trip through the API server and a process on the node).
    /// </summary>
    private const string ProbeScript = "ls -1 \"$1\" 2>&1; echo \"ls-exit $?\"; echo '@@'; cat /sys/devices/system/cpu/possible; echo '@@'; ip -j link show; echo; echo '@@'; " + ClockScript;

    /// <summary>The realtime clock and CLOCK_MONOTONIC ("now at N nsecs" in /proc/timer_list).</summary>
    private const string ClockScript = "date +%s%N; grep -m1 'now at' /proc/timer_list";

    /// <summary>The clock as the probe sampled it, for the first <see cref="SampleClock"/> after it (the dump it started).</summary>
    private ClockSample? _probeClock;

    /// <summary>
    /// The probe, then (in the same exec, gzip'd) the description and dump of the highest version of
    /// one map family, picked in the shell as <see cref="MapCatalog.FindLatest"/> picks it: the reader
    /// that asked for it (<see cref="ExpectDump"/>) then needs no second round trip.
    /// </summary>
    private const string ProbeAndDumpScript = NeedGzip + "{ " + ProbeScript + "; echo; echo '@@probe-end'; " +
        "best=; bestv=0; for f in \"$1\"/\"$2\"*; do n=${f##*/}; v=${n#\"$2\"}; case \"$v\" in '') v=1;; *[!0-9]*) continue;; esac; " +
        "if [ \"$v\" -gt \"$bestv\" ]; then best=$f; bestv=$v; fi; done; " +
        "if [ -n \"$best\" ] && command -v bpftool >/dev/null; then printf '@@show %s\\n' \"$best\"; bpftool -j map show pinned \"$best\"; " +
        "printf '@@map %s\\n' \"$best\"; bpftool -j map dump pinned \"$best\"; printf '\\n'; fi; } | gzip -1";

    /// <summary>
    /// Says that the next read is a whole dump of the live map of this family: a remote node that has
    /// not been probed yet starts that dump in the probe's exec. Readers only; changes never ask.
    /// </summary>
    public void ExpectDump(string baseName)
    {
        if (_probe is null && _prefetched is null)
        {
            _expectedDump = baseName;
        }
    }

    /// <summary>The probe and the expected dump in one exec; null (and nothing left running) when that fails, for the plain probe to run.</summary>
    private string? ProbeWithDump(string baseName)
    {
        DumpSession? session = null;
        try
        {
            session = DumpSession.Start(this, ProbeAndDumpScript, new[] { PinDirectory, baseName }, PinDirectory, _cancellationToken);
            var probe = new StringBuilder();
            string? line;
            while ((line = session.ReadHeader()) is not null && line != "@@probe-end")
            {
                probe.Append(line).Append('\n');
            }

            if (line is null)
            {
                session.Dispose();
                return null;
            }

            if (session.DescribeNext() is { } described)
            {
                _prefetched = new Prefetch(described.Path, described.Descriptor, session);
                _descriptors[described.Path] = described.Descriptor;
            }
            else
            {
                session.Dispose();
            }

            return probe.ToString();
        }
        catch (Exception ex) when (ex is BpfException or IOException or InvalidDataException or NodeCommandException or JsonException && !_cancellationToken.IsCancellationRequested)
        {
            session?.Dispose();
            return null;
        }
    }

    private Probe NodeProbe()
    {
        if (_probe is not null)
        {
            return _probe;
        }

        string? expected = Interlocked.Exchange(ref _expectedDump, null);
        string text = (expected is null ? null : ProbeWithDump(expected)) ?? RunText("sh", "-c", ProbeScript, "probe", PinDirectory);
        string[] parts = text.Split("@@\n");
        if (parts.Length < 3)
        {
            throw new BpfException($"Probing {Node} gave unexpected output: {text[..Math.Min(text.Length, 200)]}", 0, PinDirectory);
        }

        if (parts.Length > 3)
        {
            try
            {
                _probeClock = ParseClock(parts[3]);
            }
            catch (FormatException)
            {
                // SampleClock asks on its own.
            }
        }

        string[] lsLines = parts[0].Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        bool lsFailed = lsLines.Length == 0 || lsLines[^1] != "ls-exit 0";
        var links = new Dictionary<int, NetworkLink>();
        using (JsonDocument doc = JsonDocument.Parse(parts[2]))
        {
            foreach (JsonElement l in doc.RootElement.EnumerateArray())
            {
                int index = l.GetProperty("ifindex").GetInt32();
                links[index] = new NetworkLink(index, l.GetProperty("ifname").GetString() ?? string.Empty);
            }
        }

        return _probe = new Probe(lsFailed ? Array.Empty<string>() : lsLines[..^1], lsFailed, lsFailed ? string.Join(' ', lsLines[..^1]) : string.Empty,
            KernelInfo.ParseCpuList(parts[1]), links);
    }

    public IReadOnlyList<CalicoMapName> ListMaps()
    {
        Probe probe = NodeProbe();
        if (probe.PinDirectoryMissing)
        {
            throw new BpfEnvironmentException(
                $"The pin directory {PinDirectory} cannot be listed on {Node} ({probe.PinError.Trim().TrimEnd('.')}). calico-node is not running in eBPF mode there: Felix may have fallen back to iptables, and its log says why (kubectl logs on the calico-node pod).",
                BpfEnvironmentProblem.NoBpfFs, PinDirectory);
        }

        var pins = probe.Pins
            .Select(MapCatalog.Parse).Where(p => p is not null).Select(p => p!).OrderBy(p => p.PinName, StringComparer.Ordinal).ToList();
        if (pins.Count == 0)
        {
            throw new BpfEnvironmentException(
                $"No Calico BPF maps are pinned in {PinDirectory} on {Node}. Is calico-node running in eBPF mode there (FelixConfiguration bpfEnabled: true)?",
                BpfEnvironmentProblem.NoCalicoMaps, PinDirectory);
        }

        return pins;
    }

    /// <summary>Possible CPUs of the node (per-CPU values have one copy each).</summary>
    public int PossibleCpus => NodeProbe().PossibleCpus;

    public IMapReader OpenMap(string pinName)
    {
        string path = PinDirectory + "/" + pinName;
        if (_descriptors.TryGetValue(path, out BpfMapDescriptor? known))
        {
            return new BpftoolMapReader(this, path, known);
        }

        string json;
        try
        {
            json = RunText("bpftool", "-j", "map", "show", "pinned", path);
        }
        catch (NodeCommandException ex) when (ex.ExitCode != 127)
        {
            throw BpftoolError(ex, path);
        }

        using JsonDocument doc = JsonDocument.Parse(json);
        return new BpftoolMapReader(this, path, Descriptor(doc.RootElement, pinName));
    }

    /// <summary>
    /// Opens a map whose entries are read next: one exec describes it (bpftool map show) and then
    /// dumps it, instead of one exec for each. The dump starts now; disposing the reader unread ends it.
    /// </summary>
    public IMapReader OpenMapToDump(string pinName)
    {
        string path = PinDirectory + "/" + pinName;
        if (Interlocked.Exchange(ref _prefetched, null) is { } prefetched)
        {
            if (prefetched.Path == path)
            {
                return new BpftoolMapReader(this, path, prefetched.Descriptor, prefetched.Session);
            }

            prefetched.Session.Dispose(); // the shell picked another pin than the catalog: read this one afresh
        }

        if (_descriptors.ContainsKey(path))
        {
            return OpenMap(pinName); // described already: the dump is one exec anyway
        }

        var session = new DumpSession(this, new[] { path }, _cancellationToken, describe: true);
        try
        {
            BpfMapDescriptor descriptor = session.Guard(() => session.Describe(path, pinName));
            _descriptors[path] = descriptor;
            return new BpftoolMapReader(this, path, descriptor, session);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Describes the maps in one exec (bpftool map show for each pin, in a shell loop), so that
    /// opening many (Get-BpfMap) costs one round trip, not one each. A pin that fails here is asked
    /// for again on its own when opened, and fails with its own error.
    /// </summary>
    public void PrepareToOpen(IReadOnlyList<string> pinNames)
    {
        var wanted = pinNames.Select(n => PinDirectory + "/" + n).Where(p => !_descriptors.ContainsKey(p)).ToList();
        if (wanted.Count < 2)
        {
            return; // one map: OpenMap's own exec is as cheap
        }

        // The pins go on stdin (a node may pin a hundred maps: their paths would make the URL long).
        const string script = NeedBpftool + ReadPaths + "printf '@@map %s\\n' \"$p\"; bpftool -j map show pinned \"$p\"; printf '\\n'; done";
        string text;
        try
        {
            (text, NodeCommandException? failure) = RunWithInput(new[] { "sh", "-c", script, "describe", wanted.Count.ToString(CultureInfo.InvariantCulture) }, PathLines(wanted));
            if (failure is not null)
            {
                return;
            }
        }
        catch (NodeCommandException)
        {
            return; // each map is then described on its own, with its own error
        }

        string? path = null;
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("@@map ", StringComparison.Ordinal))
            {
                path = line[6..];
            }
            else if (path is not null && line.StartsWith('{') && BpftoolJsonReader.ErrorMessage(Encoding.UTF8.GetBytes(line)) is null)
            {
                using JsonDocument doc = JsonDocument.Parse(line);
                _descriptors[path] = Descriptor(doc.RootElement, path[(path.LastIndexOf('/') + 1)..]);
                path = null;
            }
        }
    }

    private static BpfMapDescriptor Descriptor(JsonElement m, string pinName) => new(
        m.GetProperty("id").GetUInt32(),
        ParseType(m.GetProperty("type").GetString() ?? string.Empty),
        m.GetProperty("bytes_key").GetInt32(),
        m.GetProperty("bytes_value").GetInt32(),
        m.GetProperty("max_entries").GetInt32(),
        m.TryGetProperty("flags", out JsonElement f) ? f.GetUInt32() : 0,
        m.TryGetProperty("name", out JsonElement n) ? n.GetString() ?? pinName : pinName);

    /// <summary>
    /// Every map that has to be dumped to be counted is dumped in one exec, each dump on one line
    /// after a "@@map path" line, gzip'd as a single dump is; each line is counted by the same JSON
    /// reader as it streams by.
    /// </summary>
    public IReadOnlyList<long?> CountEntries(IReadOnlyList<IMapReader> maps, CancellationToken cancellationToken)
    {
        var result = new long?[maps.Count];
        var dumps = new List<(int Index, BpftoolMapReader Map)>();
        for (int i = 0; i < maps.Count; i++)
        {
            if (maps[i] is BpftoolMapReader r && r.Descriptor.Type.IsIterable() && !r.Descriptor.Type.IsArray())
            {
                dumps.Add((i, r));
            }
            else
            {
                result[i] = maps[i].CountEntries(cancellationToken);
            }
        }

        if (dumps.Count == 0)
        {
            return result;
        }

        using var session = new DumpSession(this, dumps.Select(d => d.Map.Path).ToList(), cancellationToken);
        foreach ((int index, BpftoolMapReader map) in dumps)
        {
            result[index] = session.Guard(() =>
            {
                int cpus = map.Descriptor.Type.IsPerCpu() ? PossibleCpus : 1;
                long n = 0;
                using Stream dump = session.Next(map.Path);
                foreach (RawEntryBatch b in new BpftoolJsonReader(dump, map.Descriptor, cpus, map.Path).ReadBatches(4096, cancellationToken))
                {
                    n += b.Count;
                }

                return n;
            });
        }

        session.Complete();
        return result;
    }

    /// <summary>
    /// bpftool -j map dump of one or more pins in one exec, gzip'd on the node (bpftool spells each
    /// byte as "0x00", 7 characters; gzip shrinks that about twentyfold before it crosses the exec
    /// stream). Each dump is one line after a "@@map path" line. A missing tool is exit code 127.
    /// </summary>
    private sealed class DumpSession : IDisposable
    {
        /// <remarks>The pins come on stdin (<see cref="ReadPaths"/>): counting every map of a node names them all.</remarks>
        private const string Script = NeedBpftool + NeedGzip +
            ReadPaths + "printf '@@map %s\\n' \"$p\"; bpftool -j map dump pinned \"$p\"; printf '\\n'; done | gzip -1";

        /// <summary>The same, with each dump preceded by "@@show path" and bpftool's description of the map.</summary>
        private const string DescribeScript = NeedBpftool + NeedGzip +
            ReadPaths + "printf '@@show %s\\n' \"$p\"; bpftool -j map show pinned \"$p\"; printf '@@map %s\\n' \"$p\"; bpftool -j map dump pinned \"$p\"; printf '\\n'; done | gzip -1";

        private readonly CommandDataplane _node;
        private readonly ICommandRun _run;
        private readonly System.IO.Compression.GZipStream _text;
        private readonly LineSections _lines;
        private readonly CancellationToken _cancellationToken;
        private string _current;

        public DumpSession(CommandDataplane node, IReadOnlyList<string> paths, CancellationToken cancellationToken, bool describe = false)
            : this(node, describe ? DescribeScript : Script, new[] { paths.Count.ToString(CultureInfo.InvariantCulture) }, paths[0], cancellationToken, PathLines(paths))
        {
        }

        private DumpSession(CommandDataplane node, string script, IReadOnlyList<string> arguments, string current, CancellationToken cancellationToken, ReadOnlyMemory<byte> input = default)
        {
            _node = node;
            _cancellationToken = cancellationToken;
            _current = current;
            _run = node._runner.Start(new[] { "sh", "-c", script, "dump" }.Concat(arguments).ToList(), cancellationToken, input);
            _text = new System.IO.Compression.GZipStream(_run.StandardOutput, System.IO.Compression.CompressionMode.Decompress);
            _lines = new LineSections(_text);
        }

        /// <summary>A session running any script whose output is gzip'd lines (the probe with a dump).</summary>
        public static DumpSession Start(CommandDataplane node, string script, IReadOnlyList<string> arguments, string current, CancellationToken cancellationToken) =>
            new(node, script, arguments, current, cancellationToken);

        /// <summary>The next non-empty line, or null at the end of the output.</summary>
        public string? ReadHeader() => _lines.ReadLine();

        /// <summary>The next "@@show path" section (a pin the script picked): its path and description; null at the end.</summary>
        public (string Path, BpfMapDescriptor Descriptor)? DescribeNext()
        {
            string? header = _lines.ReadLine();
            if (header is null || !header.StartsWith("@@show ", StringComparison.Ordinal))
            {
                return null;
            }

            string path = header[7..];
            string? json = _lines.ReadLine();
            if (json is null || !json.StartsWith('{') || BpftoolJsonReader.ErrorMessage(Encoding.UTF8.GetBytes(json)) is not null)
            {
                return null;
            }

            using JsonDocument doc = JsonDocument.Parse(json);
            _current = path;
            return (path, CommandDataplane.Descriptor(doc.RootElement, path[(path.LastIndexOf('/') + 1)..]));
        }

        /// <summary>The description of the next pin (a session started with describe), or the error bpftool gave for it.</summary>
        public BpfMapDescriptor Describe(string path, string pinName)
        {
            _current = path;
            string? header = _lines.ReadLine();
            string? json = header == "@@show " + path ? _lines.ReadLine() : null;
            if (json is null || !json.StartsWith('{'))
            {
                throw new BpfException($"Describing {path} on {_node.Node} gave {(header is null ? "no output" : "unexpected output")}.", 0, path);
            }

            if (BpftoolJsonReader.ErrorMessage(Encoding.UTF8.GetBytes(json)) is { } error)
            {
                throw BpftoolFailure(_node.Node, path, error, null);
            }

            using JsonDocument doc = JsonDocument.Parse(json);
            return CommandDataplane.Descriptor(doc.RootElement, pinName);
        }

        /// <summary>The dump of the next pin, which must be <paramref name="path"/>, as a stream.</summary>
        public Stream Next(string path)
        {
            _current = path;
            string? header = _lines.ReadLine();
            if (header != "@@map " + path)
            {
                throw new BpfException($"Dumping maps of {_node.Node} gave {(header is null ? "no more output" : "unexpected output")} where the dump of {path} was expected.", 0, path);
            }

            return _lines.OpenLine();
        }

        /// <summary>
        /// Runs one step of reading. A cut-short stream fails with the command's outcome (non-zero
        /// exit, a dropped connection), which says why better than half a JSON does.
        /// </summary>
        public T Guard<T>(Func<T> step)
        {
            try
            {
                return step();
            }
            catch (Exception ex) when (ex is BpfException or InvalidDataException or IOException && !_cancellationToken.IsCancellationRequested)
            {
                Complete();
                throw;
            }
        }

        /// <summary>Waits for the command's outcome; a failure becomes the error of the pin read last.</summary>
        public void Complete()
        {
            try
            {
                _run.Complete();
            }
            catch (NodeCommandException ex) when (ex.ExitCode != 127)
            {
                throw BpftoolError(ex, _current);
            }
        }

        public void Dispose()
        {
            _text.Dispose();
            _run.Dispose();
        }
    }

    public IMapWriter OpenMapForWrite(string pinName) => (BpftoolMapReader)OpenMap(pinName);

    /// <summary>Ends a dump the probe started that no reader took (its exec closes with it).</summary>
    public void Dispose() => Interlocked.Exchange(ref _prefetched, null)?.Session.Dispose();

    /// <summary>
    /// The node's clocks: the probe's sample when it has not been used yet (the probe ran just before
    /// the read it serves, in the same exec as the dump), else one exec of its own.
    /// </summary>
    public ClockSample SampleClock()
    {
        if (_probeClock is { } sample)
        {
            _probeClock = null;
            return sample;
        }

        return ParseClock(RunText("sh", "-c", ClockScript));
    }

    private static ClockSample ParseClock(string text)
    {
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length < 2 || !long.TryParse(lines[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out long realNs)
            || lines[1].Split(' ') is not { Length: > 2 } now || !ulong.TryParse(now[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out ulong mono))
        {
            throw new FormatException($"The node's clocks could not be read: {text.Trim()}");
        }

        return new ClockSample(mono, DateTime.UnixEpoch.AddTicks(realNs / 100));
    }

    public IReadOnlyDictionary<int, NetworkLink> ListLinks() => NodeProbe().Links;

    public IReadOnlyList<QdiscStatistic> ListQdiscs()
    {
        IReadOnlyDictionary<int, NetworkLink> links = ListLinks();
        var byName = links.Values.ToDictionary(l => l.Name, l => l.IfIndex);
        using JsonDocument doc = JsonDocument.Parse(RunText("tc", "-s", "-j", "qdisc", "show"));
        var result = new List<QdiscStatistic>();
        foreach (JsonElement q in doc.RootElement.EnumerateArray())
        {
            string dev = q.GetProperty("dev").GetString() ?? string.Empty;
            ulong U(string name) => q.TryGetProperty(name, out JsonElement v) ? v.GetUInt64() : 0;
            string parent = q.TryGetProperty("parent", out JsonElement p) ? p.GetString() ?? string.Empty : q.TryGetProperty("root", out _) ? "root" : string.Empty;
            result.Add(new QdiscStatistic
            {
                Node = Node,
                Interface = dev,
                IfIndex = byName.TryGetValue(dev, out int i) ? i : 0,
                Kind = q.GetProperty("kind").GetString() ?? string.Empty,
                Handle = q.GetProperty("handle").GetString() ?? string.Empty,
                Parent = parent,
                Bytes = U("bytes"),
                Packets = U("packets"),
                Drops = (uint)U("drops"),
                Overlimits = (uint)U("overlimits"),
                Requeues = (uint)U("requeues"),
                Backlog = (uint)U("backlog"),
                QueueLength = (uint)U("qlen"),
            });
        }

        return result;
    }

    /// <summary>
    /// One exec: bpftool's version (bpftool older than 7.3 lists no TCX or netkit entry), its net show,
    /// its programs (for names and tags, as the kernel has them) and Felix's TCX and netkit link pins.
    /// </summary>
    public AttachmentListing ListAttachments()
    {
        const string script = "command -v bpftool >/dev/null || exit 127; " +
            "x=$(bpftool -j version) || exit 5; printf '%s\\n@@\\n' \"$x\"; " +
            "x=$(bpftool -j net show) || exit 5; printf '%s\\n@@\\n' \"$x\"; " +
            "x=$(bpftool -j prog show) || exit 5; printf '%s\\n@@\\n' \"$x\"; " +
            "for d in \"$@\"; do [ -d \"$d\" ] && for f in \"$d\"/*; do [ -e \"$f\" ] && printf '%s\\n' \"$f\"; done; done; exit 0";
        string text;
        try
        {
            text = RunText(new[] { "sh", "-c", script, "attachments" }.Concat(AttachmentReader.LinkPinDirectories).ToArray());
        }
        catch (NodeCommandException ex) when (ex.ExitCode == 5)
        {
            throw new BpfException($"bpftool could not list the programs attached to the interfaces of {Node}: {ex.StandardError.Trim()}", 0, "bpftool net show", ex);
        }

        string[] parts = text.Split("@@\n");
        if (parts.Length < 4)
        {
            throw new InvalidDataException($"Node {Node} answered the attachment listing with {parts.Length} parts where 4 were expected.");
        }

        return AttachmentReader.ParseBpftool(Node, parts[0], parts[1], parts[2], parts[3].Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    public IReadOnlyList<string>? ListDirectory(string path)
    {
        string text = RunText("sh", "-c", "[ -d \"$1\" ] || { echo missing; exit 0; }; echo present; ls -1 \"$1\"", "ls", path);
        string[] lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length > 0 && lines[0] == "present" ? lines[1..].OrderBy(n => n, StringComparer.Ordinal).ToList() : null;
    }

    public string? ReadTextFile(string path)
    {
        string text = RunText("sh", "-c", "[ -f \"$1\" ] || { printf missing; exit 0; }; printf 'present\\n'; cat \"$1\"", "cat", path);
        return text.StartsWith("present\n", StringComparison.Ordinal) ? text["present\n".Length..] : null;
    }

    /// <summary>Shell: find() sets $t to a mounted tracefs (or the debugfs one) and says whether there is one.</summary>
    private const string FindTraceFs =
        "find() { for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do [ -f \"$d/trace\" ] && { t=$d; return 0; }; done; return 1; }; ";

    /// <summary>
    /// The trace buffer (or, following, the pipe) of the node's kernel from inside calico-node, through
    /// a mounted tracefs. No real calico-node container has one (neither the manifest nor the operator
    /// mounts it, and the image has no mount): following then streams through bpftool prog tracelog,
    /// which mounts tracefs at /sys/kernel/tracing itself, where it stays until the container restarts.
    /// Reading the buffer without consuming it needs that mount; bpftool cannot do it without reading
    /// (and so consuming) the pipe, so a read before it says so (exit 4).
    /// </summary>
    public IEnumerable<string> ReadTraceLines(bool follow, string? tracingDirectory, CancellationToken cancellationToken)
    {
        string script = tracingDirectory is not null
            ? "t=\"$1\"; " + (follow ? "exec cat \"$t/trace_pipe\"" : "exec cat \"$t/trace\"")
            : follow ? FindTraceFs + "if find; then exec cat \"$t/trace_pipe\"; fi; command -v bpftool >/dev/null || exit 3; exec bpftool prog tracelog 2>/dev/null"
            : FindTraceFs + "find || exit 4; exec cat \"$t/trace\"";
        // Ended by the caller's token (Ctrl+C) and by this dataplane's (a fan-out whose downstream stopped
        // it, Select-Object -First): a follow waits for the next line, which may never come.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cancellationToken);
        cancellationToken = stop.Token;
        using ICommandRun run = _runner.Start(new[] { "sh", "-c", script, "trace", tracingDirectory ?? string.Empty }, cancellationToken);
        using var reader = new StreamReader(run.StandardOutput, Encoding.UTF8);
        string? line;
        while (!cancellationToken.IsCancellationRequested && (line = reader.ReadLine()) is not null)
        {
            if (line.Length > 0 && line[0] != '#')
            {
                yield return line;
            }
        }

        if (cancellationToken.IsCancellationRequested)
        {
            yield break;
        }

        try
        {
            run.Complete();
        }
        catch (NodeCommandException ex) when (ex.ExitCode is 3 or 4)
        {
            throw new BpfEnvironmentException(ex.ExitCode == 4
                    ? $"calico-node on {Node} has no tracefs mounted (no calico-node does until something mounts it), so its trace buffer cannot be read without consuming it. " +
                      $"Get-BpfTraceLog -Node {Node} -Follow streams it through bpftool prog tracelog, which mounts tracefs in the container (it stays until the container restarts); after that the buffer can be read too."
                    : $"The kernel trace buffer of {Node} is not reachable from calico-node: no tracefs is mounted there and there is no bpftool to mount one.",
                BpfEnvironmentProblem.NoTraceFs, "/sys/kernel/tracing", ex);
        }
    }

    /// <summary>
    /// Shell test: true when the node's bpftool has no link object (bpftool 5.3, as the calico-node
    /// image of v3.25 to v3.28.0 ships it; the object came with Linux 5.8's bpftool). Its own help
    /// lists the objects it knows. Without links, removing a link's pin releases it, which detaches it.
    /// </summary>
    private const string NoLinkObject = "! bpftool help 2>&1 | grep -qw link";

    /// <summary>
    /// One exec: the cgroup (resolved on the node as <see cref="ConnectTime.DefaultCgroup"/> does),
    /// its inode (a cgroup's id), bpftool's cgroup listing (empty output when nothing is attached),
    /// its links with their pins, and its programs. Attachments held by links are taken from the
    /// links even if the cgroup listing fails: Calico attaches through links.
    /// </summary>
    public IReadOnlyList<ConnectTimeProgram> ListConnectTimePrograms(string? cgroupPath, string linkDirectory, bool calicoOnly)
    {
        const string script =
            "cg=\"$1\"; [ -n \"$cg\" ] || cg=\"${CALICO_CGROUP_PATH:-}\"; " +
            "if [ -z \"$cg\" ] && [ -d /run/calico/cgroup ]; then cg=/run/calico/cgroup; fi; " +
            "if [ -z \"$cg\" ]; then while read -r dev mnt type rest; do if [ \"$type\" = cgroup2 ]; then cg=$mnt; break; fi; done < /proc/self/mounts; fi; " +
            "[ -n \"$cg\" ] || exit 3; [ -d \"$cg\" ] || exit 4; " +
            "printf '%s\\n' \"$cg\"; set -- $(ls -di \"$cg\"); printf '%s\\n' \"$1\"; " +
            "x=$(bpftool -j cgroup show \"$cg\" 2>/dev/null); printf '%s\\n' \"$x\"; " +
            // bpftool 5.3 (the image's in v3.25 to v3.28.0) has no link object: then the cgroup listing alone.
            // A listing races with links and programs coming and going (Felix at work), so a failed one is
            // tried again once; the third try, of a bpftool that has links, tells the error on stderr.
            "x=$(bpftool -j -f link show 2>/dev/null) || x=$(bpftool -j -f link show 2>/dev/null) || { " + NoLinkObject + " || { bpftool -j -f link show >/dev/null; exit 5; }; x='[]'; }; printf '%s\\n' \"$x\"; " +
            "x=$(bpftool -j prog show 2>/dev/null) || x=$(bpftool -j prog show) || exit 5; printf '%s\\n' \"$x\"";
        string text;
        try
        {
            text = RunText("sh", "-c", script, "connect-time", cgroupPath ?? string.Empty);
        }
        catch (NodeCommandException ex) when (ex.ExitCode is 3 or 4)
        {
            throw new BpfEnvironmentException(ex.ExitCode == 3
                    ? $"Node {Node} has no cgroup v2 hierarchy mounted, so no connect-time programs can be attached. Pass -CgroupPath if it is mounted somewhere unusual."
                    : $"The cgroup {cgroupPath} does not exist on node {Node}. Pass the cgroup v2 directory calico-node uses (CALICO_CGROUP_PATH, by default /run/calico/cgroup).",
                BpfEnvironmentProblem.NoBpfFs, cgroupPath ?? "/run/calico/cgroup");
        }

        string[] lines = text.Split('\n');
        if (lines.Length < 5)
        {
            throw new InvalidDataException($"Node {Node} answered the connect-time listing with {lines.Length} lines where 5 were expected.");
        }

        string cgroup = lines[0];
        ulong cgroupId = ulong.Parse(lines[1].Trim(), CultureInfo.InvariantCulture);
        var programs = new Dictionary<uint, JsonElement>();
        using JsonDocument progDoc = JsonDocument.Parse(lines[4]);
        foreach (JsonElement prog in progDoc.RootElement.EnumerateArray())
        {
            programs[prog.GetProperty("id").GetUInt32()] = prog;
        }

        string directory = linkDirectory.TrimEnd('/');
        var viaLinks = new List<(CgroupAttachType Type, uint ProgramId)>();
        var pins = new Dictionary<uint, string>();
        using JsonDocument linkDoc = JsonDocument.Parse(lines[3]);
        foreach (JsonElement link in linkDoc.RootElement.EnumerateArray())
        {
            // A link type this bpftool's libbpf does not know is printed as its number (bpftool 7.1 prints a TCX link as 11).
            if (link.GetProperty("type") is not { ValueKind: JsonValueKind.String } linkType || linkType.GetString() != "cgroup" || !link.TryGetProperty("prog_id", out JsonElement progId))
            {
                continue;
            }

            uint id = progId.GetUInt32();
            if (link.TryGetProperty("pinned", out JsonElement pinned))
            {
                foreach (JsonElement pin in pinned.EnumerateArray())
                {
                    string path = pin.GetString() ?? string.Empty;
                    if (Path.GetDirectoryName(path) == directory && ConnectTime.IsCalicoName(Path.GetFileName(path)))
                    {
                        pins[id] = path;
                    }
                }
            }

            if (link.TryGetProperty("cgroup_id", out JsonElement cg) && cg.GetUInt64() == cgroupId &&
                link.TryGetProperty("attach_type", out JsonElement at) && ConnectTime.ParseAttachType(at.GetString() ?? string.Empty) is { } type)
            {
                viaLinks.Add((type, id));
            }
        }

        // bpftool's cgroup listing has every attachment, with or without a link, in the kernel's
        // order; when it could not query the cgroup, the links (in the order they were made) stand in.
        List<(CgroupAttachType Type, uint ProgramId)> attached = viaLinks;
        if (lines[2].TrimStart().StartsWith('['))
        {
            attached = new();
            using JsonDocument cgroupDoc = JsonDocument.Parse(lines[2]);
            foreach (JsonElement a in cgroupDoc.RootElement.EnumerateArray())
            {
                if (ConnectTime.ParseAttachType(a.GetProperty("attach_type").GetString() ?? string.Empty) is { } type)
                {
                    attached.Add((type, a.GetProperty("id").GetUInt32()));
                }
            }
        }

        var result = new List<ConnectTimeProgram>();
        foreach ((CgroupAttachType type, uint id) in attached.OrderBy(a => a.Type))
        {
            if (!programs.TryGetValue(id, out JsonElement prog))
            {
                continue; // detached meanwhile
            }

            string name = prog.TryGetProperty("name", out JsonElement n) ? n.GetString() ?? string.Empty : string.Empty;
            string? linkPath = pins.GetValueOrDefault(id);
            bool calico = ConnectTime.IsCalicoName(name) || linkPath is not null;
            if (calicoOnly && !calico)
            {
                continue;
            }

            result.Add(new ConnectTimeProgram
            {
                Node = Node,
                Cgroup = cgroup,
                AttachType = type,
                ProgramId = id,
                Name = name,
                Tag = prog.TryGetProperty("tag", out JsonElement t) ? t.GetString() ?? string.Empty : string.Empty,
                Loaded = prog.TryGetProperty("loaded_at", out JsonElement l) && l.ValueKind == JsonValueKind.Number
                    ? DateTime.UnixEpoch.AddSeconds(l.GetInt64())
                    : null,
                LinkPath = linkPath,
                IsCalico = calico,
            });
        }

        return result;
    }

    public (IReadOnlyList<string> ProgramArrays, IReadOnlyList<string> Links) PlanConnectTimeRemoval(string linkDirectory)
    {
        const string script =
            "for n in " + "cali_ctlb_conn cali_ctlb_send cali_ctlb_recv" + "; do [ -e \"$1/$n\" ] && printf 'A %s\\n' \"$1/$n\"; done; " +
            "if [ -d \"$2\" ]; then for f in \"$2\"/cali_* \"$2\"/calico_*; do [ -e \"$f\" ] && printf 'L %s\\n' \"$f\"; done; fi; exit 0";
        string[] lines = RunText("sh", "-c", script, "connect-time", PinDirectory, linkDirectory.TrimEnd('/')).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var arrays = ConnectTime.ProgramArrays.Select(n => PinDirectory.TrimEnd('/') + "/" + n).Where(p => lines.Contains("A " + p)).ToList();
        var links = lines.Where(l => l.StartsWith("L ", StringComparison.Ordinal)).Select(l => l[2..]).OrderBy(p => p, StringComparer.Ordinal).ToList();
        return (arrays, links);
    }

    public void RemoveConnectTimeProgramArray(string path)
    {
        // An empty slot is no error (bpftool: "No such file or directory"): the pin goes all the same.
        const string script =
            "out=$(bpftool map delete pinned \"$1\" key 0 0 0 0 2>&1) || case \"$out\" in *'No such file'*) ;; *) echo \"$out\" >&2; exit 1;; esac; rm -f \"$1\"";
        RunText("sh", "-c", script, "connect-time", path);
    }

    public void RemoveConnectTimeLink(string path)
    {
        // A Calico pin that is not a link ("incorrect object type") is only unpinned, as calico-bpf does.
        const string script =
            "out=$(bpftool link detach pinned \"$1\" 2>&1) || case \"$out\" in *'incorrect object type'*|*'Invalid argument'*) ;; *) " + NoLinkObject + " || { echo \"$out\" >&2; exit 1; };; esac; rm -f \"$1\"";
        RunText("sh", "-c", script, "connect-time", path);
    }

    private static Exception BpftoolError(NodeCommandException ex, string path) =>
        BpftoolFailure(ex.Node, path, ex.StandardError + ex.Message, ex, ex.StandardError.Trim(), ex.Message);

    /// <summary>bpftool's complaint about a pin as the error a local read would give: not pinned, refused, or as it says.</summary>
    private static Exception BpftoolFailure(string node, string path, string text, Exception? inner, string? detail = null, string? message = null) =>
        text.Contains("No such file", StringComparison.Ordinal)
            ? new BpfObjectNotFoundException($"{path} is not pinned on {node}.", Errno.ENOENT, path, inner)
            : text.Contains("Operation not permitted", StringComparison.Ordinal) || text.Contains("Permission denied", StringComparison.Ordinal)
                ? new BpfPermissionDeniedException($"bpftool was refused {path} on {node}: {detail ?? text.Trim()}", Errno.EPERM, path, inner)
                : new BpfException(message ?? $"bpftool could not read {path} on {node}: {text.Trim()}", 0, path, inner);

    /// <summary>bpftool's type names (libbpf map_type_name) to the kernel's numbers.</summary>
    public static BpfMapType ParseType(string name) => name switch
    {
        "hash" => BpfMapType.Hash,
        "array" => BpfMapType.Array,
        "prog_array" => BpfMapType.ProgramArray,
        "perf_event_array" => BpfMapType.PerfEventArray,
        "percpu_hash" => BpfMapType.PerCpuHash,
        "percpu_array" => BpfMapType.PerCpuArray,
        "stack_trace" => BpfMapType.StackTrace,
        "cgroup_array" => BpfMapType.CgroupArray,
        "lru_hash" => BpfMapType.LruHash,
        "lru_percpu_hash" => BpfMapType.LruPerCpuHash,
        "lpm_trie" => BpfMapType.LpmTrie,
        "array_of_maps" => BpfMapType.ArrayOfMaps,
        "hash_of_maps" => BpfMapType.HashOfMaps,
        "devmap" => BpfMapType.DevMap,
        "sockmap" => BpfMapType.SockMap,
        "cpumap" => BpfMapType.CpuMap,
        "xskmap" => BpfMapType.XskMap,
        "sockhash" => BpfMapType.SockHash,
        "queue" => BpfMapType.Queue,
        "stack" => BpfMapType.Stack,
        "devmap_hash" => BpfMapType.DevMapHash,
        "struct_ops" => BpfMapType.StructOps,
        "ringbuf" => BpfMapType.RingBuffer,
        "bloom_filter" => BpfMapType.BloomFilter,
        "user_ringbuf" => BpfMapType.UserRingBuffer,
        "arena" => BpfMapType.Arena,
        _ => BpfMapType.Unspecified,
    };

    /// <summary>Reads with bpftool's dump; writes with bpftool map delete / update, many keys per exec.</summary>
    private sealed class BpftoolMapReader : IMapWriter
    {
        /// <summary>
        /// Keys per exec. They travel on stdin, not in the URL (proxies cap request lines at 8 to 16 KB): the
        /// limit only bounds one exec's input (about 750 KB for IPv6 conntrack keys) and output.
        /// </summary>
        private const int KeysPerExec = 4096;

        /// <summary>
        /// Keys of one chunk found gone by a batch before the rest of the chunk goes through the per-key loop:
        /// each costs an exec (a round trip), the loop about a millisecond a key. The next chunk tries a batch again.
        /// </summary>
        private const int GoneKeysBeforeLoop = 16;

        /// <summary>The batch's last line: no bpftool command, so batch stops there (its exit code says failure, the output says done).</summary>
        private const string EndOfKeys = "calicobpf-end-of-keys";

        private readonly CommandDataplane _node;
        private readonly string _path;

        /// <summary>The pin on the node.</summary>
        public string Path => _path;

        /// <summary>A dump already under way in the exec that described the map (OpenMapToDump).</summary>
        private DumpSession? _pending;

        public BpftoolMapReader(CommandDataplane node, string path, BpfMapDescriptor descriptor, DumpSession? pending = null)
        {
            _node = node;
            _path = path;
            Descriptor = descriptor;
            _pending = pending;
        }

        public BpfMapDescriptor Descriptor { get; }

        public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken)
        {
            if (!Descriptor.Type.IsIterable())
            {
                throw new BpfNotSupportedException($"{_path} is a {Descriptor.Type} map; its entries cannot be dumped.", Errno.EOPNOTSUPP, _path);
            }

            int cpus = Descriptor.Type.IsPerCpu() ? _node.PossibleCpus : 1;

            using DumpSession session = Interlocked.Exchange(ref _pending, null) ?? new DumpSession(_node, new[] { _path }, cancellationToken);
            var reader = new BpftoolJsonReader(session.Guard(() => session.Next(_path)), Descriptor, cpus, _path);
            using IEnumerator<RawEntryBatch> batches = reader.ReadBatches(4096, cancellationToken).GetEnumerator();
            while (session.Guard(batches.MoveNext))
            {
                yield return batches.Current;
            }

            session.Complete();
        }

        public long? CountEntries(CancellationToken cancellationToken)
        {
            if (Descriptor.Type.IsArray())
            {
                return Descriptor.MaxEntries;
            }

            if (!Descriptor.Type.IsIterable())
            {
                return null;
            }

            long n = 0;
            foreach (RawEntryBatch b in ReadEntries(cancellationToken))
            {
                n += b.Count;
            }

            return n;
        }

        public int ValueStride => Descriptor.ValueStride(Descriptor.Type.IsPerCpu() ? _node.PossibleCpus : 1);

        public bool Delete(ReadOnlySpan<byte> key) => DeleteMany(new[] { key.ToArray() }) == 1;

        public int DeleteMany(IReadOnlyList<byte[]> keys)
        {
            // The keys go on the exec's stdin, so the request's URL stays small whatever their number.
            // bpftool batch deletes them in one process; it stops at the first command that fails, and a
            // key already gone fails: that key counts as gone and the batch goes on after it in a new exec.
            // When many keys of a chunk are gone, the rest of that chunk goes through a shell loop, one bpftool
            // per key, which tells each key apart; so does everything when a batch fails otherwise or the pin
            // path cannot be written in a batch line.
            int deleted = 0;
            bool batch = BatchSafe(_path);
            int i = 0;
            while (i < keys.Count)
            {
                int chunkEnd = Math.Min(i + KeysPerExec, keys.Count);
                int gone = 0;
                bool goneBefore = false; // the key before this batch's first was found gone
                while (i < chunkEnd)
                {
                    IReadOnlyList<byte[]> rest = keys.Skip(i).Take(chunkEnd - i).ToList();
                    if (batch && gone < GoneKeysBeforeLoop)
                    {
                        (int batchDeleted, bool failedOnGone) = DeleteInBatch(rest);
                        goneBefore &= batchDeleted == 0;
                        deleted += batchDeleted;
                        i += batchDeleted;
                        if (i == chunkEnd)
                        {
                            break;
                        }

                        if (failedOnGone)
                        {
                            // Two gone keys in a row say the keys are gone in runs (an earlier removal, a
                            // stale listing): the loop is cheaper than an exec per key from here.
                            gone = batchDeleted == 0 && goneBefore ? GoneKeysBeforeLoop : gone + 1;
                            goneBefore = true;
                            i++; // the key that failed: gone, not deleted
                        }
                        else
                        {
                            batch = false; // another failure: the loop decides key by key from here
                        }

                        continue;
                    }

                    deleted += DeleteInLoop(rest);
                    i = chunkEnd;
                }
            }

            return deleted;
        }

        /// <summary>Whether the pin path can stand in a batch line as it is (bpftool's batch parser splits on blanks, quotes and '#').</summary>
        private static bool BatchSafe(string path) => path.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '.' or ':' or '+' or '@' or '=' or ',');

        /// <summary>
        /// One bpftool batch over the keys: how many it deleted before it stopped (in order: the keys before
        /// the one that failed), and whether it stopped because that key was already gone.
        /// </summary>
        private (int Deleted, bool FailedOnGone) DeleteInBatch(IReadOnlyList<byte[]> keys)
        {
            var input = new StringBuilder(keys.Count * (40 + _path.Length + 3 * (keys.Count > 0 ? keys[0].Length : 0)));
            foreach (byte[] k in keys)
            {
                input.Append("map delete pinned ").Append(_path).Append(" key hex ").Append(Hex(k)).Append('\n');
            }

            input.Append(EndOfKeys).Append('\n');
            string[] argv = { "bpftool", "-j", "batch", "file", "-" };
            (string text, NodeCommandException? failure) = _node.RunWithInput(argv, Encoding.ASCII.GetBytes(input.ToString()));
            int exit = failure?.ExitCode ?? 0;

            // [{"command":["map","delete",...],"output":null}, ..., then either the end line's
            // {"command":["calicobpf-end-of-keys"],"output":null} or the failing one's {"output":{"error":"..."}}].
            // One object per key is the outcome line the silence watch needs; bpftool flushes them as it goes.
            int done = 0;
            try
            {
                using JsonDocument doc = JsonDocument.Parse(text);
                foreach (JsonElement o in doc.RootElement.EnumerateArray())
                {
                    JsonElement command = o.GetProperty("command");
                    string first = command.ValueKind == JsonValueKind.Array ? command[0].GetString() ?? string.Empty : command.GetString() ?? string.Empty;
                    JsonElement output = o.TryGetProperty("output", out JsonElement v) ? v : default;
                    bool failed = output.ValueKind == JsonValueKind.Object && output.TryGetProperty("error", out _);
                    if (first.StartsWith(EndOfKeys, StringComparison.Ordinal) && done == keys.Count)
                    {
                        return (done, false);
                    }

                    if (first != "map" || done >= keys.Count)
                    {
                        break;
                    }

                    if (failed)
                    {
                        string error = output.GetProperty("error").GetString() ?? string.Empty;
                        return (done, error.StartsWith("delete failed", StringComparison.Ordinal) && error.Contains("No such file or directory", StringComparison.Ordinal));
                    }

                    done++;
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException or KeyNotFoundException or IndexOutOfRangeException)
            {
                throw NotOnePerKey(keys.Count, done, exit, ex);
            }

            throw NotOnePerKey(keys.Count, done, exit, null);
        }

        private BpfException NotOnePerKey(int keys, int outcomes, int exit, Exception? inner) =>
            new($"Deleting {keys} keys from {_path} on {_node.Node} gave {outcomes} outcomes, not one per key: the node's output was unexpected"
                + (exit != 0 ? $" (bpftool batch ended with exit code {exit})." : "."), 0, _path, inner);

        /// <summary>
        /// A shell loop, one bpftool per key, told on stdin which keys (a line each) and in argv how many: it
        /// never waits for the end of stdin, which exec over v4 cannot signal. A line per key (1: deleted, 0:
        /// gone) keeps the session talking, so -TimeoutSec's silence watch never mistakes a long run for a stuck node.
        /// </summary>
        private int DeleteInLoop(IReadOnlyList<byte[]> keys)
        {
            const string script = "p=$1; n=$2; while [ \"$n\" -gt 0 ] && read -r k; do n=$((n-1)); if bpftool map delete pinned \"$p\" key hex $k 2>/dev/null; then echo 1; else echo 0; fi; done";
            string input = string.Concat(keys.Select(k => Hex(k) + "\n"));
            string[] argv = { "sh", "-c", script, "delete", _path, keys.Count.ToString(CultureInfo.InvariantCulture) };
            (string text, NodeCommandException? failure) = _node.RunWithInput(argv, Encoding.ASCII.GetBytes(input));
            int exit = failure?.ExitCode ?? 0;
            string[] outcomes = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (exit != 0 || outcomes.Length != keys.Count || outcomes.Any(o => o is not ("0" or "1")))
            {
                throw new BpfException($"Deleting {keys.Count} keys from {_path} on {_node.Node} gave {outcomes.Length} outcomes, not one per key: the node's output was unexpected"
                    + (exit != 0 ? $" (the delete script ended with exit code {exit})." : "."), 0, _path);
            }

            return outcomes.Count(o => o == "1");
        }

        public bool UpdateExisting(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            // bpftool writes one value to every CPU of a per-CPU map: the first CPU's copy is the value.
            // Key and value come on stdin, a line each: as arguments, each byte was a command= parameter
            // of the exec URL (11 characters a byte; a counters value of 27 counters alone took 2.4 KB).
            ReadOnlySpan<byte> one = value[..Descriptor.ValueSize];
            const string script = "IFS= read -r k && IFS= read -r v || exit 2; exec bpftool map update pinned \"$1\" key hex $k value hex $v exist";
            string input = Hex(key.ToArray()) + "\n" + Hex(one.ToArray()) + "\n";
            string[] argv = { "sh", "-c", script, "update", _path };
            (_, NodeCommandException? failure) = _node.RunWithInput(argv, Encoding.ASCII.GetBytes(input));
            if (failure is null)
            {
                return true;
            }

            return (failure.StandardError + failure.Message).Contains("No such file", StringComparison.Ordinal) ? false : throw failure;
        }

        private static string Hex(byte[] bytes) => string.Join(' ', bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

        public void Dispose() => Interlocked.Exchange(ref _pending, null)?.Dispose();
    }
}
