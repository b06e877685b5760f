using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>One program attached to a cgroup, as the node's kernel (or its bpftool) tells it.</summary>
/// <param name="Loaded">When it was loaded, to the second (bpftool's loaded_at); null when unknown.</param>
public sealed record CgroupAttachment(CgroupAttachType Type, uint ProgramId, string Name, string Tag, DateTime? Loaded);

/// <summary>
/// The raw facts of a cgroup's programs: the cgroup read, its attachments in the kernel's order of
/// each hook, and every bpf link pinned in a directory with the program it runs, ordered by path
/// (whatever their names: which are Calico's is <c>Maps.ConnectTime</c>'s to decide). A node that
/// cannot tell which pin holds a link (bpftool 5.3 has no link object) has none.
/// </summary>
public sealed record CgroupProgramListing(string Cgroup, IReadOnlyList<CgroupAttachment> Attached, IReadOnlyList<LinkPin> LinkPins);

/// <summary>A pinned bpf link and the program it runs.</summary>
public sealed record LinkPin(uint ProgramId, string Path);
