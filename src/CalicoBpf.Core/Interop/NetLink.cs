namespace CalicoBpf.Interop;

/// <summary>A network interface as rtnetlink reports it.</summary>
public sealed record NetworkLink(int IfIndex, string Name);

/// <summary>
/// rtnetlink over a raw AF_NETLINK socket: a dump of the links in the calling thread's network
/// namespace. Message framing follows include/uapi/linux/netlink.h and rtnetlink.h.
/// </summary>
public static unsafe class NetLink
{
    private const int AF_NETLINK = 16;
    private const int SOCK_RAW = 3;
    private const int SOCK_CLOEXEC = 0x80000;
    private const int NETLINK_ROUTE = 0;
    private const ushort NLMSG_ERROR = 2;
    private const ushort NLMSG_DONE = 3;
    private const ushort RTM_NEWLINK = 16;
    private const ushort RTM_GETLINK = 18;
    private const ushort NLM_F_REQUEST = 1;
    private const ushort NLM_F_DUMP = 0x300;
    private const ushort IFLA_IFNAME = 3;
    private const int NlMsgHdrLen = 16;
    private const int IfInfoMsgLen = 16;

    /// <summary>Every link of the current network namespace, by ifindex.</summary>
    public static IReadOnlyDictionary<int, NetworkLink> ListLinks()
    {
        var links = new Dictionary<int, NetworkLink>();
        Dump(RTM_GETLINK, IfInfoMsgLen, chunk => ParseLinkMessages(chunk, links));
        return links;
    }

    /// <summary>
    /// Sends one NLM_F_DUMP request of <paramref name="type"/> with a zeroed family header of
    /// <paramref name="headerLength"/> bytes, and hands every recv() to <paramref name="parse"/>
    /// until it reports NLMSG_DONE.
    /// </summary>
    internal static void Dump(ushort type, int headerLength, ChunkParser parse) => Dump(type, new byte[headerLength], parse);

    /// <summary>The same with a family header of the caller's (tcmsg with an ifindex and a parent).</summary>
    internal static void Dump(ushort type, ReadOnlySpan<byte> header, ChunkParser parse)
    {
        KernelInfo.EnsureLinux();
        int fd = Libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
        {
            throw BpfException.FromErrno(Libc.LastErrno, "socket(AF_NETLINK, NETLINK_ROUTE)", null);
        }

        try
        {
            byte[] request = new byte[NlMsgHdrLen + header.Length];
            header.CopyTo(request.AsSpan(NlMsgHdrLen));
            BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)request.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(4), type);
            BinaryPrimitives.WriteUInt16LittleEndian(request.AsSpan(6), NLM_F_REQUEST | NLM_F_DUMP);
            BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(8), 1);
            fixed (byte* p = request)
            {
                if (Libc.send(fd, p, request.Length, 0) < 0)
                {
                    throw BpfException.FromErrno(Libc.LastErrno, $"send(rtnetlink {type})", null);
                }
            }

            byte[] buffer = new byte[64 * 1024];
            while (true)
            {
                nint n;
                fixed (byte* p = buffer)
                {
                    n = Libc.recv(fd, p, buffer.Length, 0);
                }

                if (n < 0)
                {
                    int errno = Libc.LastErrno;
                    if (errno == Errno.EINTR)
                    {
                        continue;
                    }

                    throw BpfException.FromErrno(errno, $"recv(rtnetlink {type})", null);
                }

                if (parse(buffer.AsSpan(0, (int)n)))
                {
                    return;
                }
            }
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>
    /// Walks the messages of one recv(): calls <paramref name="onMessage"/> with each message of
    /// <paramref name="wanted"/> type (its payload after the netlink header). True at NLMSG_DONE.
    /// </summary>
    internal static bool ForEachMessage(ReadOnlySpan<byte> data, ushort wanted, MessageHandler onMessage)
    {
        int offset = 0;
        while (offset + NlMsgHdrLen <= data.Length)
        {
            int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(data[(offset + 4)..]);
            if (length < NlMsgHdrLen || offset + length > data.Length)
            {
                throw new BpfException($"rtnetlink returned a malformed message (length {length} at offset {offset}).");
            }

            if (type == NLMSG_DONE)
            {
                return true;
            }

            if (type == NLMSG_ERROR)
            {
                int error = BinaryPrimitives.ReadInt32LittleEndian(data[(offset + NlMsgHdrLen)..]);
                if (error != 0)
                {
                    throw BpfException.FromErrno(-error, "rtnetlink", null);
                }
            }
            else if (type == wanted)
            {
                onMessage(data.Slice(offset + NlMsgHdrLen, length - NlMsgHdrLen));
            }

            offset += (length + 3) & ~3;
        }

        return false;
    }

    internal delegate void MessageHandler(ReadOnlySpan<byte> payload);

    internal delegate bool ChunkParser(ReadOnlySpan<byte> chunk);

    /// <summary>Calls <paramref name="onAttribute"/> for each rtattr (type without the nested/byte-order bits, and payload).</summary>
    internal static void ForEachAttribute(ReadOnlySpan<byte> attributes, AttributeHandler onAttribute)
    {
        int attr = 0;
        while (attr + 4 <= attributes.Length)
        {
            int attrLen = BinaryPrimitives.ReadUInt16LittleEndian(attributes[attr..]);
            int attrType = BinaryPrimitives.ReadUInt16LittleEndian(attributes[(attr + 2)..]) & 0x3fff;
            if (attrLen < 4 || attr + attrLen > attributes.Length)
            {
                return;
            }

            onAttribute(attrType, attributes.Slice(attr + 4, attrLen - 4));
            attr += (attrLen + 3) & ~3;
        }
    }

    internal delegate void AttributeHandler(int type, ReadOnlySpan<byte> payload);

    internal static string ReadString(ReadOnlySpan<byte> raw)
    {
        int nul = raw.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? raw : raw[..nul]);
    }

    /// <summary>Parses one recv() worth of RTM_NEWLINK messages. Returns true at NLMSG_DONE.</summary>
    internal static bool ParseLinkMessages(ReadOnlySpan<byte> data, Dictionary<int, NetworkLink> links) =>
        ForEachMessage(data, RTM_NEWLINK, msg =>
        {
            if (msg.Length < IfInfoMsgLen)
            {
                return;
            }

            int ifIndex = BinaryPrimitives.ReadInt32LittleEndian(msg[4..]);
            string? name = null;
            ForEachAttribute(msg[IfInfoMsgLen..], (type, payload) =>
            {
                if (type == IFLA_IFNAME)
                {
                    name = ReadString(payload);
                }
            });
            if (name is not null)
            {
                links[ifIndex] = new NetworkLink(ifIndex, name);
            }
        });
}
