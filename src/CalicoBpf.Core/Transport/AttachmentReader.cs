using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>
/// The programs attached to a node's interfaces at the TC hooks, whichever way Felix attached them
/// (bpfAttachType TC, TCX, Netkit), in bpftool net show's order: per interface (by ifindex) the TCX
/// ingress and egress entries, netkit primary and peer, then the clsact ingress and egress filters.
/// Locally from the kernel (BPF_PROG_QUERY on the ifindex, RTM_GETTFILTER); remotely from bpftool's
/// JSON. Both go through <see cref="Make"/>, so a remote attachment equals the local one.
/// </summary>
public static class AttachmentReader
{
    /// <summary>The first bpftool that lists TCX and netkit entries in net show (libbpf/bpftool v7.3.0, src/net.c).</summary>
    public static readonly Version FirstBpftoolWithTcx = new(7, 3);

    /// <summary>Where Felix pins the links of its TCX and netkit attachments (felix/bpf/bpfdefs: TcxPinDir, NetkitPinDir).</summary>
    public static readonly string[] LinkPinDirectories = { "/sys/fs/bpf/tcx", "/sys/fs/bpf/netkit" };

    /// <summary>bpftool net show's attach point names (its attach_loc_strings and the clsact filter kinds), in its order.</summary>
    private static readonly (string Point, AttachKind Kind, PolicyHook Hook, DeviceAttachType? Device)[] Points =
    {
        ("tcx/ingress", AttachKind.TCX, PolicyHook.Ingress, DeviceAttachType.TcxIngress),
        ("tcx/egress", AttachKind.TCX, PolicyHook.Egress, DeviceAttachType.TcxEgress),
        // felix/bpf/tc/attach.go attachNetkitProgram: hook Ingress (from the pod) on the peer, Egress on the primary.
        ("netkit/primary", AttachKind.Netkit, PolicyHook.Egress, DeviceAttachType.NetkitPrimary),
        ("netkit/peer", AttachKind.Netkit, PolicyHook.Ingress, DeviceAttachType.NetkitPeer),
        ("clsact/ingress", AttachKind.TC, PolicyHook.Ingress, null),
        ("clsact/egress", AttachKind.TC, PolicyHook.Egress, null),
    };

    /// <summary>The kernel keeps 15 characters of a program's name (BPF_OBJ_NAME_LEN); bpftool prints the full one from BTF.</summary>
    private const int KernelNameLength = 15;

    /// <summary>The attachments of the calling thread's network namespace, read from the kernel.</summary>
    public static AttachmentListing ReadLocal(string node)
    {
        var result = new List<ProgramAttachment>();
        foreach (NetworkLink link in NetLink.ListLinks().Values.OrderBy(l => l.IfIndex))
        {
            var found = new List<(string Point, uint ProgramId, uint LinkId)>();
            foreach ((string point, _, _, DeviceAttachType? device) in Points)
            {
                if (device is { } type)
                {
                    found.AddRange(BpfPrograms.QueryDevice(link.IfIndex, type).Select(a => (point, a.ProgramId, a.LinkId)));
                }
            }

            found.AddRange(TrafficControl.ListBpfFilters(link.IfIndex).Select(f => (f.Ingress ? "clsact/ingress" : "clsact/egress", f.ProgramId, 0u)));
            foreach ((string point, uint programId, uint linkId) in found)
            {
                BpfProgramDescriptor program;
                try
                {
                    program = BpfPrograms.Describe(programId);
                }
                catch (BpfObjectNotFoundException)
                {
                    continue; // detached meanwhile
                }

                result.Add(Make(node, link.Name, link.IfIndex, point, programId, program.Name, program.Tag, linkId)!);
            }
        }

        return new AttachmentListing(result);
    }

    /// <summary>
    /// The attachments bpftool reported: <paramref name="version"/> is bpftool -j version, <paramref name="net"/>
    /// bpftool -j net show, <paramref name="programs"/> bpftool -j prog show, <paramref name="linkPins"/> the
    /// pins in Felix's TCX and netkit link directories. A bpftool older than 7.3 cannot list TCX and
    /// netkit entries: the listing says so, and whether Felix's link pins show that there are some.
    /// </summary>
    public static AttachmentListing ParseBpftool(string node, string version, string net, string programs, IReadOnlyList<string> linkPins)
    {
        var byId = new Dictionary<uint, (string Name, string Tag)>();
        using (JsonDocument doc = JsonDocument.Parse(programs))
        {
            foreach (JsonElement p in doc.RootElement.EnumerateArray())
            {
                byId[p.GetProperty("id").GetUInt32()] = (Str(p, "name"), Str(p, "tag"));
            }
        }

        var result = new List<ProgramAttachment>();
        using (JsonDocument doc = JsonDocument.Parse(net))
        {
            foreach (JsonElement section in doc.RootElement.EnumerateArray())
            {
                if (!section.TryGetProperty("tc", out JsonElement tc))
                {
                    continue;
                }

                foreach (JsonElement e in tc.EnumerateArray())
                {
                    // TCX and netkit entries carry prog_id and link_id (0: attached without a link), tc filters id.
                    uint id = e.TryGetProperty("prog_id", out JsonElement pid) ? pid.GetUInt32() : e.TryGetProperty("id", out JsonElement fid) ? fid.GetUInt32() : 0;
                    if (id == 0 || !byId.TryGetValue(id, out (string Name, string Tag) program))
                    {
                        continue; // a filter without a program, or detached meanwhile
                    }

                    uint linkId = e.TryGetProperty("link_id", out JsonElement lid) ? lid.GetUInt32() : 0;
                    if (Make(node, Str(e, "devname"), e.GetProperty("ifindex").GetInt32(), Str(e, "kind"), id, program.Name, program.Tag, linkId) is { } a)
                    {
                        result.Add(a);
                    }
                }
            }
        }

        Version seen = ParseVersion(version);
        if (seen >= FirstBpftoolWithTcx)
        {
            return new AttachmentListing(Order(result));
        }

        string pins = linkPins.Count == 0
            ? " Felix has pinned no TCX or netkit link there (" + string.Join(", ", LinkPinDirectories) + "), and the Calico releases that ship this bpftool (v3.25 to v3.28.0) attach with TC only."
            : $" Felix has pinned {linkPins.Count} TCX or netkit link{(linkPins.Count == 1 ? string.Empty : "s")} there ({string.Join(", ", linkPins.Take(3))}{(linkPins.Count > 3 ? ", ..." : string.Empty)}): those programs are attached but cannot be listed this way; run Get-BpfInterface on the node itself (as root) to see them.";
        return new AttachmentListing(Order(result), AttachKind.TCX | AttachKind.Netkit,
            $"The bpftool of calico-node on {node} is {seen.ToString(3)}, older than {FirstBpftoolWithTcx} (the first to list TCX and netkit attachments): only TC (clsact) attachments are listed.{pins}",
            linkPins.Count);
    }

    /// <summary>bpftool -j version: {"version":"7.5.0",...}; bpftool 5.3 prints the kernel's version there.</summary>
    internal static Version ParseVersion(string json)
    {
        using JsonDocument doc = JsonDocument.Parse(json);
        string text = doc.RootElement.TryGetProperty("version", out JsonElement v) ? v.GetString() ?? string.Empty : string.Empty;
        string[] parts = text.TrimStart('v').Split('.', '-', '+');
        int Part(int i) => i < parts.Length && int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0;
        return new Version(Part(0), Part(1), Part(2));
    }

    /// <summary>One attachment from what either source says; null for an attach point that is not a TC hook.</summary>
    private static ProgramAttachment? Make(string node, string iface, int ifIndex, string point, uint programId, string name, string tag, uint linkId)
    {
        int i = Array.FindIndex(Points, p => p.Point == point);
        if (i < 0)
        {
            return null;
        }

        string kernelName = name.Length > KernelNameLength ? name[..KernelNameLength] : name;
        return new ProgramAttachment
        {
            Node = node,
            Interface = iface,
            IfIndex = ifIndex,
            Kind = Points[i].Kind,
            Hook = Points[i].Hook,
            AttachPoint = point,
            ProgramId = programId,
            ProgramName = kernelName,
            Tag = tag,
            LinkId = linkId == 0 ? null : linkId,
            IsCalico = ProgramAttachment.IsCalicoName(kernelName),
        };
    }

    /// <summary>By interface, then in bpftool's order of attach points; the kernel's order within one.</summary>
    private static List<ProgramAttachment> Order(List<ProgramAttachment> list) =>
        list.OrderBy(a => a.IfIndex).ThenBy(a => Array.FindIndex(Points, p => p.Point == a.AttachPoint)).ToList();

    private static string Str(JsonElement e, string name) => e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() ?? string.Empty : string.Empty;

    /// <summary>
    /// The run statistics of the programs <paramref name="wanted"/> in bpftool -j prog show (run_time_ns and
    /// run_cnt, which bpftool leaves out while they are 0).
    /// </summary>
    public static Dictionary<uint, ProgramRun> ParseRunStatistics(string programs, IReadOnlySet<uint> wanted)
    {
        var runs = new Dictionary<uint, ProgramRun>();
        using JsonDocument doc = JsonDocument.Parse(programs);
        foreach (JsonElement p in doc.RootElement.EnumerateArray())
        {
            uint id = p.GetProperty("id").GetUInt32();
            if (!wanted.Contains(id))
            {
                continue;
            }

            ulong time = p.TryGetProperty("run_time_ns", out JsonElement t) ? t.GetUInt64() : 0;
            ulong count = p.TryGetProperty("run_cnt", out JsonElement c) ? c.GetUInt64() : 0;
            runs[id] = new ProgramRun(time, count);
        }

        return runs;
    }
}
