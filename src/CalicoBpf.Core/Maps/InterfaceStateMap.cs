using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>Felix's interface state map, cali_iface (versions 2, 3, 4; reference section 2.10).</summary>
public static class InterfaceStateMap
{
    public const string BaseName = "cali_iface";

    private static readonly (InterfaceStateFlags Flag, string Name)[] Names =
    {
        (InterfaceStateFlags.Workload, "workload"),
        (InterfaceStateFlags.V4Ready, "v4Ready"),
        (InterfaceStateFlags.V6Ready, "v6Ready"),
        (InterfaceStateFlags.Host, "host"),
        (InterfaceStateFlags.Bond, "bond"),
        (InterfaceStateFlags.BondSlave, "bondslave"),
        (InterfaceStateFlags.Vxlan, "vxlan"),
        (InterfaceStateFlags.Ipip, "ipip"),
        (InterfaceStateFlags.WireGuard, "wg"),
        (InterfaceStateFlags.L3, "l3"),
        (InterfaceStateFlags.NotManaged, "notmanaged"),
    };

    /// <summary>
    /// Versions 2 and 3 (v3.24 to v3.27) define two flags, 0x1 "workload" and 0x2 "ready"
    /// (felix/bpf/ifstate/map.go flagsToStr at those tags); version 4 splits readiness per family.
    /// </summary>
    private static readonly (InterfaceStateFlags Flag, string Name)[] NamesBeforeVersion4 =
    {
        (InterfaceStateFlags.Workload, "workload"),
        (InterfaceStateFlags.V4Ready, "ready"),
    };

    /// <summary>calico-bpf's flag names in a version 4 map; flags 0 print as "host".</summary>
    public static string[] FlagNames(InterfaceStateFlags flags) => FlagNames(flags, 4);

    /// <summary>calico-bpf's flag names in a map of the version; flags 0 print as "host"; bits the version does not define as 0x hex.</summary>
    public static string[] FlagNames(InterfaceStateFlags flags, int version)
    {
        if (flags == InterfaceStateFlags.None)
        {
            return new[] { "host" };
        }

        (InterfaceStateFlags Flag, string Name)[] table = version >= 4 ? Names : NamesBeforeVersion4;
        var names = table.Where(n => (flags & n.Flag) != 0).Select(n => n.Name).ToList();
        uint rest = (uint)flags & ~table.Aggregate(0u, (m, n) => m | (uint)n.Flag);
        for (int bit = 0; bit < 32; bit++)
        {
            if ((rest & (1u << bit)) != 0)
            {
                names.Add("0x" + (1u << bit).ToString("x", System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        return names.ToArray();
    }

    /// <summary>Value size of each version: 4 = 52, 3 = 40, 2 = 20.</summary>
    public static int ValueSize(int version) => version >= 4 ? 52 : version == 3 ? 40 : 20;

    public static byte[] EncodeValue(int version, InterfaceStateFlags flags, string name, params int[] programs)
    {
        byte[] v = new byte[ValueSize(version)];
        BinaryPrimitives.WriteUInt32LittleEndian(v, (uint)flags);
        Encoding.ASCII.GetBytes(name.Length > 15 ? name[..15] : name).CopyTo(v, 4);
        for (int i = 0; i < (v.Length - 20) / 4; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(v.AsSpan(20 + (i * 4)), i < programs.Length ? programs[i] : -1);
        }

        return v;
    }

    /// <param name="attachments">The node's attachments (<see cref="INodeDataplane.ListAttachments"/>); null: not read.</param>
    public static InterfaceState Decode(string node, int version, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, IReadOnlyList<ProgramAttachment>? attachments = null)
    {
        var flags = (InterfaceStateFlags)BinaryPrimitives.ReadUInt32LittleEndian(value);
        int ifIndex = (int)BinaryPrimitives.ReadUInt32LittleEndian(key);
        ProgramAttachment[] attached = attachments?.Where(a => a.IfIndex == ifIndex).ToArray() ?? Array.Empty<ProgramAttachment>();
        ReadOnlySpan<byte> name = value.Slice(4, 16);
        int nul = name.IndexOf((byte)0);
        bool v4 = value.Length >= 52;
        return new InterfaceState
        {
            Node = node,
            IfIndex = ifIndex,
            Name = Encoding.ASCII.GetString(nul < 0 ? name : name[..nul]),
            Flags = flags,
            FlagNames = FlagNames(flags, version),
            XdpPolicyV4 = At(value, 20),
            IngressPolicyV4 = At(value, 24),
            EgressPolicyV4 = At(value, 28),
            XdpPolicyV6 = v4 ? At(value, 32) : null,
            IngressPolicyV6 = v4 ? At(value, 36) : null,
            EgressPolicyV6 = v4 ? At(value, 40) : null,
            TcIngressFilter = v4 ? At(value, 44) : At(value, 32),
            TcEgressFilter = v4 ? At(value, 48) : At(value, 36),
            MapVersion = version,
            AttachKind = attached.Aggregate(AttachKind.None, (k, a) => k | a.Kind),
            Attachments = attached,
        };
    }

    private static int? At(ReadOnlySpan<byte> value, int offset) =>
        value.Length >= offset + 4 ? BinaryPrimitives.ReadInt32LittleEndian(value[offset..]) : null;

    /// <param name="withAttachments">
    /// Also ask the node which programs are attached to its interfaces (TC, TCX, netkit), and say in a
    /// warning which kinds it cannot see.
    /// </param>
    public static IEnumerable<InterfaceState> Read(INodeDataplane node, IEngineReporter? reporter = null, CancellationToken cancellationToken = default, bool withAttachments = false)
    {
        CalicoMapName pin = MapReading.FindToDump(node, BaseName, "interface state");
        IReadOnlyList<ProgramAttachment>? attachments = null;
        if (withAttachments)
        {
            AttachmentListing listing = node.ListAttachments();
            if (listing.UnseenReason is { } why)
            {
                reporter?.Warning(why);
            }

            attachments = listing.Attachments;
        }

        return MapReading.Decode<InterfaceState>(node, pin, d =>
        {
            int expected = d.ValueSize is 52 or 40 or 20 ? d.ValueSize : ValueSize(pin.Version);
            MapReading.ExpectSizes(pin, d, 4, expected, "4-byte keys and 52 (version 4), 40 (version 3) or 20-byte (version 2) values");
            int version = d.ValueSize == 52 ? Math.Max(pin.Version, 4) : d.ValueSize == 40 ? 3 : 2;
            return (key, value) => Decode(node.Node, version, key, value, attachments);
        }, reporter, cancellationToken).OrderBy(s => s.IfIndex);
    }
}
