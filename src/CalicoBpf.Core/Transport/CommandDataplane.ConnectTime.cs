using System.Globalization;
using System.Text.Json;
using CalicoBpf.Interop;
using CalicoBpf.Maps;

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
        // The names come from ConnectTime.ProgramArrays, as the local plan's do: one list of them.
        string script =
            "for n in " + string.Join(' ', ConnectTime.ProgramArrays) + "; do [ -e \"$1/$n\" ] && printf 'A %s\\n' \"$1/$n\"; done; " +
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
}
