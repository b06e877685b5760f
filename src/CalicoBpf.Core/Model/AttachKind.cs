namespace CalicoBpf;

/// <summary>
/// How a program is attached to an interface (FelixConfiguration bpfAttachType): TC (a tc filter on
/// the clsact qdisc), TCX (a bpf link on the device, kernel 6.6 and later, no qdisc) or Netkit (a bpf
/// link on a netkit device, kernel 6.7 and later). An interface's summary may hold several.
/// </summary>
[Flags]
public enum AttachKind
{
    None = 0,
    TC = 0x1,
    TCX = 0x2,
    Netkit = 0x4,
}
