using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

public sealed partial class CommandDataplane
{
    public IReadOnlyDictionary<int, NetworkLink> ListLinks() => NodeProbe().Links;

    public IReadOnlyList<QdiscStatistic> ListQdiscs()
    {
        IReadOnlyDictionary<int, NetworkLink> links = ListLinks();
        var byName = links.Values.ToDictionary(l => l.Name, l => l.IfIndex);
        using JsonDocument doc = JsonDocument.Parse(RunText("tc", "-s", "-j", "qdisc", "show"));
        var qdiscs = new List<QdiscCounters>();
        foreach (JsonElement q in doc.RootElement.EnumerateArray())
        {
            string dev = q.GetProperty("dev").GetString() ?? string.Empty;
            ulong U(string name) => q.TryGetProperty(name, out JsonElement v) ? v.GetUInt64() : 0;
            string parent = q.TryGetProperty("parent", out JsonElement p) ? p.GetString() ?? string.Empty : q.TryGetProperty("root", out _) ? "root" : "0:";
            qdiscs.Add(new QdiscCounters(byName.TryGetValue(dev, out int i) ? i : 0, dev, q.GetProperty("kind").GetString() ?? string.Empty,
                TrafficControl.ParseHandle(q.GetProperty("handle").GetString() ?? "0:"), TrafficControl.ParseHandle(parent),
                U("bytes"), U("packets"), (uint)U("drops"), (uint)U("overlimits"), (uint)U("requeues"), (uint)U("backlog"), (uint)U("qlen")));
        }

        return QdiscStatistics.From(Node, links, qdiscs);
    }

    /// <summary>
    /// One exec: bpftool's version (bpftool older than 7.3 lists no TCX or netkit entry), its net show,
    /// its programs (for names and tags, as the kernel has them) and Felix's TCX and netkit link pins.
    /// </summary>
    public AttachmentListing ListAttachments()
    {
        const string script = NeedBpftool +
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

    /// <summary>
    /// One exec for the whole window: kernel.bpf_stats_enabled read and set to 1, bpftool -j prog show
    /// and the node's clock, a wait of whole seconds (a dot each), both again, and the setting put back; a
    /// trap puts it back when the exec ends early (the lifeline's TERM on Ctrl+C, a hang-up). What it cannot
    /// cover: a SIGKILL of the container leaves the setting on, and a second run on the node that overlaps
    /// puts it back when the first ends.
    /// </summary>
    public ProgramRunWindow MeasurePrograms(IReadOnlyCollection<uint> programIds, TimeSpan window, CancellationToken cancellationToken)
    {
        const string script = NeedBpftool +
            "f=/proc/sys/kernel/bpf_stats_enabled; p=$(cat \"$f\") || exit 6; r() { [ \"$p\" = 0 ] && echo 0 > \"$f\"; }; " +
            "trap 'r; exit 143' TERM INT HUP; echo 1 > \"$f\" 2>/dev/null || exit 6; printf '%s\\n@@\\n' \"$p\"; " +
            "bpftool -j prog show || { r; exit 5; }; printf '\\n@@\\n'; date +%s%N; printf '@@\\n'; " +
            // A dot a second while it waits: the session's silence watch (-TimeoutSec) sees it alive.
            "i=0; while [ $i -lt \"$1\" ]; do sleep 1 & wait $!; printf .; i=$((i+1)); done; printf '\\n'; " +
            "bpftool -j prog show || { r; exit 5; }; printf '\\n@@\\n'; date +%s%N; r; exit 0";
        string seconds = Math.Max(1, (int)Math.Round(window.TotalSeconds)).ToString(CultureInfo.InvariantCulture);
        string text;
        try
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cancellationToken);
            using ICommandRun run = _runner.Start(new[] { "sh", "-c", script, "programs", seconds }, stop.Token);
            using var reader = new StreamReader(run.StandardOutput, Encoding.UTF8);
            text = reader.ReadToEnd();
            cancellationToken.ThrowIfCancellationRequested();
            run.Complete();
        }
        catch (NodeCommandException ex) when (ex.ExitCode == 6)
        {
            throw new BpfEnvironmentException($"calico-node on {Node} cannot turn the kernel's BPF statistics on: /proc/sys/kernel/bpf_stats_enabled is not writable there ({ex.StandardError.Trim()}).",
                BpfEnvironmentProblem.NotRoot, "/proc/sys/kernel/bpf_stats_enabled");
        }
        catch (NodeCommandException ex) when (ex.ExitCode == 5)
        {
            throw new BpfException($"bpftool could not list the programs of {Node}: {ex.StandardError.Trim()}", 0, "bpftool prog show", ex);
        }

        string[] parts = text.Split("@@\n");
        if (parts.Length < 5 || !long.TryParse(parts[2].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long t0)
            || !long.TryParse(parts[4].Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long t1))
        {
            throw new InvalidDataException($"Node {Node} answered the program statistics with {parts.Length} parts where 5 were expected.");
        }

        var wanted = programIds.ToHashSet();
        return new ProgramRunWindow(AttachmentReader.ParseRunStatistics(parts[1], wanted), AttachmentReader.ParseRunStatistics(parts[3].TrimStart('.', '\n'), wanted),
            TimeSpan.FromTicks((t1 - t0) / 100), parts[0].Trim() == "1");
    }
}
