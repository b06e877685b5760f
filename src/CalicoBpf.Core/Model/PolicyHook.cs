namespace CalicoBpf;

/// <summary>Which program's policy: the TC hooks of an interface, or its XDP program.</summary>
public enum PolicyHook
{
    Ingress,
    Egress,
    Xdp,
}
