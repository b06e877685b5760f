namespace CalicoBpf;

/// <summary>
/// One entry of Calico's conntrack map, seen from the connection's opener: Source is who opened
/// the connection (after the B-A flag), Forward is the opener's direction.
/// </summary>
public sealed class ConntrackEntry
{
    public string Node { get; init; } = string.Empty;
    public IpProtocol Protocol { get; init; }
    public ConntrackType Type { get; init; }
    public string SourceAddress => SourceAddressValue.ToString();
    /// <summary>SourceAddress typed; PowerShell shows it as the hidden property SourceAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress SourceAddressValue { get; init; } = IPAddress.Any;
    public int SourcePort { get; init; }
    public string DestinationAddress => DestinationAddressValue.ToString();
    /// <summary>DestinationAddress typed; PowerShell shows it as the hidden property DestinationAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress DestinationAddressValue { get; init; } = IPAddress.Any;
    public int DestinationPort { get; init; }
    /// <summary>The pre-DNAT destination (service VIP) of a NAT entry; null for Normal entries.</summary>
    public string? ServiceAddress => ServiceAddressValue?.ToString();
    /// <summary>ServiceAddress typed; PowerShell shows it as the hidden property ServiceAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress? ServiceAddressValue { get; init; }
    public int? ServicePort { get; init; }
    /// <summary>NatReverse: the remote node service traffic is tunnelled to or from; null if none.</summary>
    public string? TunnelAddress => TunnelAddressValue?.ToString();
    /// <summary>TunnelAddress typed; PowerShell shows it as the hidden property TunnelAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress? TunnelAddressValue { get; init; }
    /// <summary>NatReverse: the source before SNAT; null if the source was not changed.</summary>
    public string? OriginalSourceAddress => OriginalSourceAddressValue?.ToString();
    /// <summary>OriginalSourceAddress typed; PowerShell shows it as the hidden property OriginalSourceAddressValue (CalicoBpf.Types.ps1xml).</summary>
    internal IPAddress? OriginalSourceAddressValue { get; init; }
    /// <summary>NatReverse: the source port before host source-port collision resolution; null if unchanged.</summary>
    public int? OriginalSourcePort { get; init; }
    /// <summary>NatForward: the rewritten source port; null if unchanged.</summary>
    public int? NatSourcePort { get; init; }
    /// <summary>NatForward: the key of the matching NatReverse entry.</summary>
    public ConntrackKey? ReverseKey { get; init; }
    public ConntrackFlags Flags { get; init; }
    public DateTime LastSeen { get; init; }
    public string Age => AgeValue.ToString("c", CultureInfo.InvariantCulture);
    /// <summary>Age typed; PowerShell shows it as the hidden property AgeValue (CalicoBpf.Types.ps1xml).</summary>
    internal TimeSpan AgeValue { get; init; }
    /// <summary>Raw last_seen: CLOCK_MONOTONIC nanoseconds on the node.</summary>
    public ulong LastSeenNanoseconds { get; init; }
    /// <summary>When a TCP RST was first seen (versions 3 and 4); null if none.</summary>
    public DateTime? ResetSeen { get; init; }
    public ulong ResetSeenNanoseconds { get; init; }
    /// <summary>Version 2 only: when the entry was created.</summary>
    public DateTime? Created { get; init; }
    public ulong CreatedNanoseconds { get; init; }
    public ConntrackLeg Forward { get; init; } = ConntrackLeg.Empty;
    public ConntrackLeg Reverse { get; init; } = ConntrackLeg.Empty;
    public ConntrackKey Key { get; init; } = new(IpProtocol.HopByHop, IPAddress.Any, 0, IPAddress.Any, 0);
    public string MapName { get; init; } = string.Empty;
    /// <summary>
    /// The bpffs directory the entry's map is pinned in, on its node (-PinPath of the read):
    /// Remove-BpfConntrack removes a piped entry there, not in the default directory.
    /// </summary>
    public string PinPath { get; init; } = string.Empty;
    public int MapVersion { get; init; }
    /// <summary>The Calico release whose meanings decoded the entry (offset 0, flag names): see Get-BpfMap's CalicoRelease.</summary>
    public CalicoRelease Release { get; init; } = CalicoRelease.Newest;
    public HexBytes RawKey { get; init; } = HexBytes.Empty;
    public HexBytes RawValue { get; init; } = HexBytes.Empty;

    /// <summary>The opener as host:port (IPv6 in brackets), as calico-bpf's JSON prints it.</summary>
    public string Source => ConntrackText.HostPort(SourceAddressValue, SourcePort);

    /// <summary>The responder as host:port: the backend of a NatReverse entry, the service of a NatForward entry.</summary>
    public string Destination => ConntrackText.HostPort(DestinationAddressValue, DestinationPort);

    /// <summary>The service (pre-DNAT destination) as host:port; empty for Normal entries.</summary>
    /// <summary>A NatForward entry's backend as host:port (the far end of its reverse key); empty for other types.</summary>
    public string Backend => Type == ConntrackType.NatForward && ReverseKey is { } r
        ? ConntrackText.HostPort(r.Other(SourceAddressValue, NatSourcePort ?? SourcePort).Address, r.Other(SourceAddressValue, NatSourcePort ?? SourcePort).Port)
        : string.Empty;

    public string ServiceEndpoint => ServiceAddressValue is null ? string.Empty : ConntrackText.HostPort(ServiceAddressValue, ServicePort ?? 0);

    /// <summary>-Resolve: "namespace/name" of the pod at the source address (empty when none is).</summary>
    public string SourcePod { get; set; } = string.Empty;

    /// <summary>-Resolve: "namespace/name" of the pod at the destination (for a NAT forward entry, the backend).</summary>
    public string DestinationPod { get; set; } = string.Empty;

    /// <summary>-Resolve: "namespace/name" of the Kubernetes service the connection went to (empty when none).</summary>
    public string Service { get; set; } = string.Empty;

    public ulong BytesForward => Forward.Bytes;
    public uint PacketsForward => Forward.Packets;
    public ulong BytesReverse => Reverse.Bytes;
    public uint PacketsReverse => Reverse.Packets;

    /// <summary>The TCP state, derived from the legs as calico-bpf does; None for non-TCP and NatForward.</summary>
    public TcpState State => ConntrackText.DeriveState(Protocol, Type, Flags, Forward, Reverse);

    /// <summary>The flag names calico-bpf prints (nat-out, B-A, ...).</summary>
    public ValueList<string> FlagNames => ConntrackText.FlagNames(Flags, Release);

    public override string ToString() => ConntrackText.Describe(this);
}
