namespace CalicoBpf;

/// <summary>One backend of a service frontend (calico_nat_dest), resolved from the backend map.</summary>
public sealed record NatBackend(uint ServiceId, int Ordinal, IPAddress? Address, int Port)
{
    /// <summary>The frontend counts this ordinal but the backend map has no entry for it.</summary>
    public bool Missing => Address is null;

    /// <summary>-Resolve: "namespace/name" of the pod at this backend's address (empty when none is).</summary>
    public string Pod { get; set; } = string.Empty;

    public override string ToString() => Missing ? $"{ServiceId}:{Ordinal} is missing" : $"{ServiceId}:{Ordinal} {ConntrackText.HostPort(Address!, Port)}";
}
