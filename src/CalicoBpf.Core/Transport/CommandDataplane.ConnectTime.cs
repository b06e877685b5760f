using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

public sealed partial class CommandDataplane
{
    /// <summary>
    /// Shell test: true when the node's bpftool has no link object (bpftool 5.3, as the calico-node
    /// image of v3.25 to v3.28.0 ships it; the object came with Linux 5.8's bpftool). Its own help
    /// lists the objects it knows. Without links, removing a link's pin releases it, which detaches it.
    /// </summary>
    private const string NoLinkObject = "! bpftool help 2>&1 | grep -qw link";

    /// <summary>
    /// One exec: the cgroup's inode (a cgroup's id), bpftool's cgroup listing (empty output when
    /// nothing is attached), the links with their pins, and the programs. Attachments held by links
    /// are taken from the links even if the cgroup listing fails: Calico attaches through links.
    /// </summary>
    public CgroupProgramListing ListCgroupPrograms(string cgroupPath, string linkDirectory)
    {
        const string script =
            "cg=\"$1\"; [ -d \"$cg\" ] || exit 4; " +
            "set -- $(ls -di \"$cg\"); printf '%s\\n' \"$1\"; " +
            "x=$(bpftool -j cgroup show \"$cg\" 2>/dev/null); printf '%s\\n' \"$x\"; " +
            // bpftool 5.3 (the image's in v3.25 to v3.28.0) has no link object: then the cgroup listing alone.
            // A listing races with links and programs coming and going (Felix at work: bpftool fails when one
            // goes between its id walk and its lookup), so a failed one is tried twice more; the last try, of a
            // bpftool that has links, tells the error on stderr.
            "x=$(bpftool -j -f link show 2>/dev/null) || x=$(bpftool -j -f link show 2>/dev/null) || x=$(bpftool -j -f link show 2>/dev/null) || { " + NoLinkObject + " || { bpftool -j -f link show >/dev/null; exit 5; }; x='[]'; }; printf '%s\\n' \"$x\"; " +
            "x=$(bpftool -j prog show 2>/dev/null) || x=$(bpftool -j prog show 2>/dev/null) || x=$(bpftool -j prog show) || exit 5; printf '%s\\n' \"$x\"";
        string text;
        try
        {
            text = RunText("sh", "-c", NeedBpftool + script, "cgroup-programs", cgroupPath);
        }
        catch (NodeCommandException ex) when (ex.ExitCode == 4)
        {
            throw new DirectoryNotFoundException($"The cgroup {cgroupPath} does not exist on node {Node}.", ex);
        }

        string[] lines = text.Split('\n');
        if (lines.Length < 4)
        {
            throw new InvalidDataException($"Node {Node} answered the cgroup program listing with {lines.Length} lines where 4 were expected.");
        }

        ulong cgroupId = ulong.Parse(lines[0].Trim(), CultureInfo.InvariantCulture);
        var programs = new Dictionary<uint, JsonElement>();
        using JsonDocument progDoc = JsonDocument.Parse(lines[3]);
        foreach (JsonElement prog in progDoc.RootElement.EnumerateArray())
        {
            programs[prog.GetProperty("id").GetUInt32()] = prog;
        }

        string directory = linkDirectory.TrimEnd('/');
        var viaLinks = new List<(CgroupAttachType Type, uint ProgramId)>();
        var pins = new List<LinkPin>();
        using JsonDocument linkDoc = JsonDocument.Parse(lines[2]);
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
                pins.AddRange(pinned.EnumerateArray().Select(p => p.GetString() ?? string.Empty).Where(p => Path.GetDirectoryName(p) == directory).Select(p => new LinkPin(id, p)));
            }

            if (link.TryGetProperty("cgroup_id", out JsonElement cg) && cg.GetUInt64() == cgroupId &&
                link.TryGetProperty("attach_type", out JsonElement at) && ParseAttachType(at.GetString() ?? string.Empty) is { } type)
            {
                viaLinks.Add((type, id));
            }
        }

        // bpftool's cgroup listing has every attachment, with or without a link, in the kernel's
        // order; when it could not query the cgroup, the links (in the order they were made) stand in.
        List<(CgroupAttachType Type, uint ProgramId)> attached = viaLinks;
        if (lines[1].TrimStart().StartsWith('['))
        {
            attached = new();
            using JsonDocument cgroupDoc = JsonDocument.Parse(lines[1]);
            foreach (JsonElement a in cgroupDoc.RootElement.EnumerateArray())
            {
                if (ParseAttachType(a.GetProperty("attach_type").GetString() ?? string.Empty) is { } type)
                {
                    attached.Add((type, a.GetProperty("id").GetUInt32()));
                }
            }
        }

        var result = new List<CgroupAttachment>();
        foreach ((CgroupAttachType type, uint id) in attached)
        {
            if (!programs.TryGetValue(id, out JsonElement prog))
            {
                continue; // detached meanwhile
            }

            result.Add(new CgroupAttachment(type, id,
                prog.TryGetProperty("name", out JsonElement n) ? n.GetString() ?? string.Empty : string.Empty,
                prog.TryGetProperty("tag", out JsonElement t) ? t.GetString() ?? string.Empty : string.Empty,
                prog.TryGetProperty("loaded_at", out JsonElement l) && l.ValueKind == JsonValueKind.Number ? DateTime.UnixEpoch.AddSeconds(l.GetInt64()) : null));
        }

        return new CgroupProgramListing(cgroupPath, result, pins.OrderBy(p => p.Path, StringComparer.Ordinal).ToList());
    }

    /// <summary>A hook from bpftool's name for it: the short one of older bpftool, or libbpf's (bpftool 7+).</summary>
    internal static CgroupAttachType? ParseAttachType(string bpftoolName) => bpftoolName switch
    {
        "connect4" or "cgroup_inet4_connect" => CgroupAttachType.Connect4,
        "connect6" or "cgroup_inet6_connect" => CgroupAttachType.Connect6,
        "sendmsg4" or "cgroup_udp4_sendmsg" => CgroupAttachType.SendMsg4,
        "sendmsg6" or "cgroup_udp6_sendmsg" => CgroupAttachType.SendMsg6,
        "recvmsg4" or "cgroup_udp4_recvmsg" => CgroupAttachType.RecvMsg4,
        "recvmsg6" or "cgroup_udp6_recvmsg" => CgroupAttachType.RecvMsg6,
        _ => null,
    };

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
}
