namespace CalicoBpf;

/// <summary>
/// What a node says about its attachments: the list, and where it cannot see some kinds (a node whose
/// bpftool predates TCX and netkit) the reason, with the number of Felix's TCX and netkit link pins
/// found there (attachments that exist but are not in the list).
/// </summary>
public sealed record AttachmentListing(IReadOnlyList<ProgramAttachment> Attachments, AttachKind Unseen = AttachKind.None, string? UnseenReason = null, int UnseenLinkPins = 0);
