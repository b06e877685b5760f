namespace CalicoBpf.Interop;

/// <summary>A bpf(2) call or another kernel call failed. Carries the errno and what was being done.</summary>
public class BpfException : Exception
{
    public BpfException(string message, int errno = 0, string? target = null, Exception? inner = null)
        : base(message, inner)
    {
        Errno = errno;
        Target = target;
    }

    /// <summary>The errno the kernel returned, 0 when the failure was not a system call.</summary>
    public int Errno { get; }

    /// <summary>The pin path, map name or other object the call was about.</summary>
    public string? Target { get; }

    /// <summary>Turns a failed call's errno into the most specific exception type.</summary>
    public static BpfException FromErrno(int errno, string operation, string? target)
    {
        string what = target is null ? operation : $"{operation} on {target}";
        string message = $"{what} failed: {Interop.Errno.Describe(errno)} ({Interop.Errno.Name(errno)}).";
        return errno switch
        {
            Interop.Errno.ENOENT => new BpfObjectNotFoundException(message, errno, target),
            Interop.Errno.EPERM or Interop.Errno.EACCES => new BpfPermissionDeniedException(
                message + " Run as root (CAP_BPF and CAP_SYS_ADMIN are needed to read Calico's maps).", errno, target),
            Interop.Errno.EINVAL => new BpfInvalidArgumentException(message, errno, target),
            Interop.Errno.ENOTSUPP or Interop.Errno.EOPNOTSUPP or Interop.Errno.ENOSYS =>
                new BpfNotSupportedException(message, errno, target),
            _ => new BpfException(message, errno, target),
        };
    }
}

/// <summary>The pinned object, map entry or directory does not exist (ENOENT).</summary>
public sealed class BpfObjectNotFoundException : BpfException
{
    public BpfObjectNotFoundException(string message, int errno = Interop.Errno.ENOENT, string? target = null, Exception? inner = null)
        : base(message, errno, target, inner) { }
}

/// <summary>The kernel refused the call for lack of privilege (EPERM, EACCES).</summary>
public sealed class BpfPermissionDeniedException : BpfException
{
    public BpfPermissionDeniedException(string message, int errno = Interop.Errno.EPERM, string? target = null, Exception? inner = null)
        : base(message, errno, target, inner) { }
}

/// <summary>The kernel or map type does not support the operation (ENOTSUPP, EOPNOTSUPP, ENOSYS).</summary>
public sealed class BpfNotSupportedException : BpfException
{
    public BpfNotSupportedException(string message, int errno = Interop.Errno.EOPNOTSUPP, string? target = null, Exception? inner = null)
        : base(message, errno, target, inner) { }
}

/// <summary>The kernel rejected the arguments (EINVAL).</summary>
public sealed class BpfInvalidArgumentException : BpfException
{
    public BpfInvalidArgumentException(string message, int errno = Interop.Errno.EINVAL, string? target = null, Exception? inner = null)
        : base(message, errno, target, inner) { }
}

/// <summary>The environment cannot host the call at all: not Linux, not root, no bpffs.</summary>
public sealed class BpfEnvironmentException : BpfException
{
    public BpfEnvironmentException(string message, BpfEnvironmentProblem problem, string? target = null, Exception? inner = null)
        : base(message, 0, target, inner)
    {
        Problem = problem;
    }

    public BpfEnvironmentProblem Problem { get; }
}

public enum BpfEnvironmentProblem
{
    NotLinux,
    NotRoot,
    NoBpfFs,
    NoCalicoMaps,
    UnsupportedArchitecture,
    NoTraceFs,
    NoPolicyDebugInfo,

    /// <summary>A path that should be a directory (-PinPath) is a file: a map's pin, or something else.</summary>
    NotADirectory,

    /// <summary>-TracingPath names no tracefs directory (missing, a file, or no trace file in it).</summary>
    NotTracingDirectory,
}
