namespace CalicoBpf.Interop;

/// <summary>
/// The few libc entry points the interop core needs. Every one of them is a thin wrapper over a
/// system call; nothing here is a library with its own logic (no libbpf, no libmnl).
/// </summary>
internal static unsafe class Libc
{
    private const string Lib = "libc";

    [DllImport(Lib, SetLastError = true)]
    internal static extern long syscall(long number, long arg1, long arg2, long arg3);

    [DllImport(Lib, SetLastError = true)]
    internal static extern int close(int fd);

    [DllImport(Lib, SetLastError = true, EntryPoint = "open")]
    internal static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport(Lib, SetLastError = true)]
    internal static extern nint read(int fd, byte* buf, nint count);

    [DllImport(Lib, SetLastError = true)]
    internal static extern int poll(PollFd* fds, nuint nfds, int timeout);

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    internal const int O_RDONLY = 0;
    internal const int O_NONBLOCK = 0x800;
    internal const int O_CLOEXEC = 0x80000;
    internal const short POLLIN = 1;
    internal const int CLOCK_BOOTTIME = 7;

    /// <summary>O_DIRECTORY differs between x86_64 (0200000) and arm64 (040000).</summary>
    internal static readonly int O_DIRECTORY = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x4000 : 0x10000;

    [DllImport(Lib, SetLastError = true)]
    internal static extern int clock_gettime(int clockId, Timespec* ts);

    [DllImport(Lib, SetLastError = true, EntryPoint = "statfs")]
    internal static extern int statfs([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte* buf);

    [DllImport(Lib, SetLastError = true)]
    internal static extern int socket(int domain, int type, int protocol);

    [DllImport(Lib, SetLastError = true)]
    internal static extern nint send(int fd, byte* buf, nint len, int flags);

    [DllImport(Lib, SetLastError = true)]
    internal static extern nint recv(int fd, byte* buf, nint len, int flags);

    [DllImport(Lib, SetLastError = true)]
    internal static extern int setns(int fd, int nstype);

    [DllImport(Lib, SetLastError = true)]
    internal static extern uint geteuid();

    [DllImport(Lib, SetLastError = true)]
    internal static extern int mount(
        [MarshalAs(UnmanagedType.LPUTF8Str)] string source,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string target,
        [MarshalAs(UnmanagedType.LPUTF8Str)] string fsType,
        ulong flags,
        nint data);

    [DllImport(Lib, SetLastError = true)]
    internal static extern int umount2([MarshalAs(UnmanagedType.LPUTF8Str)] string target, int flags);

    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    internal const int CLOCK_REALTIME = 0;
    internal const int CLOCK_MONOTONIC = 1;
    internal const int CLONE_NEWNET = 0x40000000;
    internal const int MNT_DETACH = 2;

    internal static int LastErrno => Marshal.GetLastPInvokeError();
}
