namespace CalicoBpf.Interop;

/// <summary>Runs code inside a named network namespace (/run/netns/NAME) on a thread of its own.</summary>
public static class NetworkNamespace
{
    /// <summary>
    /// Calls <paramref name="work"/> on a new thread that has joined the namespace (setns only
    /// moves the calling thread, so the caller's thread stays where it is).
    /// </summary>
    public static T Run<T>(string name, Func<T> work)
    {
        KernelInfo.EnsureLinux();
        string path = Path.Combine("/run/netns", name);
        T? result = default;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
                if (Libc.setns((int)handle.DangerousGetHandle(), Libc.CLONE_NEWNET) != 0)
                {
                    throw BpfException.FromErrno(Libc.LastErrno, "setns(CLONE_NEWNET)", path);
                }

                result = work();
            }
            catch (Exception ex)
            {
                error = ex;
            }
        });
        thread.Start();
        thread.Join();
        if (error is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        }

        return result!;
    }
}
