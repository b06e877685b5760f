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
}
