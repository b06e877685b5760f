namespace CalicoBpf;

/// <summary>One backend of a service frontend (calico_nat_dest), resolved from the backend map.</summary>
public sealed record NatBackend(uint ServiceId, int Ordinal, IPAddress? AddressValue, int Port)
{
    // Declared here so that they keep this order and the address is text (JSON, CSV).
    public uint ServiceId { get; init; } = ServiceId;

    public int Ordinal { get; init; } = Ordinal;

    /// <summary>The backend's address; null when the backend map has no entry for this ordinal.</summary>
    public string? Address => AddressValue?.ToString();

    /// <summary>Address typed; PowerShell shows it as the hidden property AddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress? AddressValue { get; init; } = AddressValue;

    public int Port { get; init; } = Port;

    /// <summary>The frontend counts this ordinal but the backend map has no entry for it.</summary>
    public bool Missing => AddressValue is null;

    /// <summary>-Resolve: "namespace/name" of the pod at this backend's address (empty when none is).</summary>
    public string Pod { get; set; } = string.Empty;

    public override string ToString() => Missing ? $"{ServiceId}:{Ordinal} is missing" : $"{ServiceId}:{Ordinal} {ConntrackText.HostPort(AddressValue!, Port)}";
}
