using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>
/// A node read through the tools the calico-node image ships (bpftool, ip, tc, cat, sh) instead of
/// system calls: the transport of remote nodes. Raw bytes from bpftool's JSON go to the same
/// decoders as local mode, so an object read this way equals the local one field for field.
/// </summary>
public sealed partial class CommandDataplane : INodeDataplane, IDisposable
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

    /// <param name="release">The node's release when known (-CalicoVersion, or the calico-node image: <see cref="NodeRelease.FromImage"/>); null: inferred from the pinned maps.</param>
    public CommandDataplane(ICommandRunner runner, string? pinDirectory = null, CancellationToken cancellationToken = default, NodeRelease? release = null)
    {
        _runner = runner;
        PinDirectory = string.IsNullOrEmpty(pinDirectory) ? NodePaths.CalicoPinDirectory : pinDirectory;
        _cancellationToken = cancellationToken;
        GivenRelease = release;
    }

    public string Node => _runner.Node;

    public NodeRelease? GivenRelease { get; }

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
    /// A guess, in the shell, at the pin <c>MapCatalog.FindLatest</c> will pick in directory $1
    /// for base name $2 (the highest version: no suffix is 1, a suffix of digits is the
    /// version, _old pins are left): $best, empty when none. Only a guess, to start the dump in the
    /// probe's exec: the catalogue decides, and a dump of another pin is dropped unread
    /// (<see cref="OpenMapToDump"/>). A test holds the guess to the catalogue's pick.
    /// </summary>
    internal const string NewestPinGuess =
        "best=; bestv=0; for f in \"$1\"/\"$2\"*; do n=${f##*/}; v=${n#\"$2\"}; case \"$v\" in '') v=1;; *[!0-9]*) continue;; esac; " +
        "if [ \"$v\" -gt \"$bestv\" ]; then best=$f; bestv=$v; fi; done; ";

    /// <summary>
    /// The probe, then (in the same exec, gzip'd) the description and dump of the pin of one map family
    /// that <see cref="NewestPinGuess"/> names: the reader that asked for it (<see cref="ExpectDump"/>)
    /// then needs no second round trip.
    /// </summary>
    private const string ProbeAndDumpScript = NeedGzip + "{ " + ProbeScript + "; echo; echo '@@probe-end'; " + NewestPinGuess +
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

    public IReadOnlyList<string> ListPins()
    {
        Probe probe = NodeProbe();
        if (probe.PinDirectoryMissing)
        {
            throw new BpfEnvironmentException(
                $"The pin directory {PinDirectory} cannot be listed on {Node} ({probe.PinError.Trim().TrimEnd('.')}). calico-node is not running in eBPF mode there: Felix may have fallen back to iptables, and its log says why (kubectl logs on the calico-node pod).",
                BpfEnvironmentProblem.NoBpfFs, PinDirectory);
        }

        return probe.Pins;
    }

    /// <summary>Possible CPUs of the node (per-CPU values have one copy each).</summary>
    public int PossibleCpus => NodeProbe().PossibleCpus;

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
            return sample.Anchored("node:" + Node);
        }

        return ParseClock(RunText("sh", "-c", ClockScript)).Anchored("node:" + Node);
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

    public string? ReadEnvironment(string name)
    {
        if (!System.Text.RegularExpressions.Regex.IsMatch(name, "^[A-Za-z_][A-Za-z0-9_]*$"))
        {
            throw new ArgumentException($"{name} is not the name of an environment variable.", nameof(name));
        }

        // The exec's shell has the container's environment (the image's and the DaemonSet's).
        string text = RunText("sh", "-c", "[ -n \"${" + name + "+set}\" ] || { printf unset; exit 0; }; printf 'set\\n%s' \"$" + name + "\"", "env");
        return text.StartsWith("set\n", StringComparison.Ordinal) ? text["set\n".Length..] : null;
    }
}
