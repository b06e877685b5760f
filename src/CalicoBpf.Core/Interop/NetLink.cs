using System.Buffers.Binary;
using System.Text;

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
        KernelInfo.EnsureLinux();
        int fd = Libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
        {
            throw BpfException.FromErrno(Libc.LastErrno, "socket(AF_NETLINK, NETLINK_ROUTE)", null);
        }

        try
        {
            Span<byte> request = stackalloc byte[NlMsgHdrLen + IfInfoMsgLen];
            request.Clear();
            BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)request.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(request[4..], RTM_GETLINK);
            BinaryPrimitives.WriteUInt16LittleEndian(request[6..], NLM_F_REQUEST | NLM_F_DUMP);
            BinaryPrimitives.WriteUInt32LittleEndian(request[8..], 1);
            fixed (byte* p = request)
            {
                if (Libc.send(fd, p, request.Length, 0) < 0)
                {
                    throw BpfException.FromErrno(Libc.LastErrno, "send(RTM_GETLINK)", null);
                }
            }

            var links = new Dictionary<int, NetworkLink>();
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

                    throw BpfException.FromErrno(errno, "recv(RTM_GETLINK)", null);
                }

                if (ParseLinkMessages(buffer.AsSpan(0, (int)n), links))
                {
                    return links;
                }
            }
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>Parses one recv() worth of netlink messages. Returns true at NLMSG_DONE.</summary>
    internal static bool ParseLinkMessages(ReadOnlySpan<byte> data, Dictionary<int, NetworkLink> links)
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
                    throw BpfException.FromErrno(-error, "rtnetlink RTM_GETLINK", null);
                }
            }
            else if (type == RTM_NEWLINK && length >= NlMsgHdrLen + IfInfoMsgLen)
            {
                ReadOnlySpan<byte> msg = data.Slice(offset + NlMsgHdrLen, length - NlMsgHdrLen);
                int ifIndex = BinaryPrimitives.ReadInt32LittleEndian(msg[4..]);
                string? name = null;
                int attr = IfInfoMsgLen;
                while (attr + 4 <= msg.Length)
                {
                    int attrLen = BinaryPrimitives.ReadUInt16LittleEndian(msg[attr..]);
                    int attrType = BinaryPrimitives.ReadUInt16LittleEndian(msg[(attr + 2)..]) & 0x3fff;
                    if (attrLen < 4 || attr + attrLen > msg.Length)
                    {
                        break;
                    }

                    if (attrType == IFLA_IFNAME)
                    {
                        ReadOnlySpan<byte> raw = msg.Slice(attr + 4, attrLen - 4);
                        int nul = raw.IndexOf((byte)0);
                        name = Encoding.UTF8.GetString(nul < 0 ? raw : raw[..nul]);
                    }

                    attr += (attrLen + 3) & ~3;
                }

                if (name is not null)
                {
                    links[ifIndex] = new NetworkLink(ifIndex, name);
                }
            }

            offset += (length + 3) & ~3;
        }

        return false;
    }
}
