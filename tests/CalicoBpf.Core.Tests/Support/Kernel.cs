using CalicoBpf.Interop;
using Xunit;

namespace CalicoBpf.Tests.Support;

/// <summary>
/// Tests that need the real kernel call <see cref="Require"/>: locally they skip with the reason
/// when the kernel refuses (not Linux, not root); with CI=true they fail instead.
/// </summary>
public static class Kernel
{
    public static bool InCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static void Require()
    {
        string? reason = !KernelInfo.IsLinux ? "not Linux" : !KernelInfo.IsRoot ? "not root" : null;
        if (reason is null)
        {
            return;
        }

        if (InCi)
        {
            throw new InvalidOperationException($"This test needs the real kernel as root, and CI=true forbids skipping it ({reason}).");
        }

        Skip.If(true, $"Needs the real kernel as root: {reason}.");
    }
}

/// <summary>
/// A private bpffs mount with a tc/globals directory, owned by one test and removed with
/// everything pinned in it, also when the test fails.
/// </summary>
public sealed class BpfFsScope : IDisposable
{
    public BpfFsScope()
    {
        Kernel.Require();
        Root = Path.Combine(Path.GetTempPath(), "calicobpf-test-" + Guid.NewGuid().ToString("N")[..12]);
        KernelInfo.MountBpfFs(Root);
        PinDirectory = Path.Combine(Root, "tc", "globals");
        Directory.CreateDirectory(PinDirectory);
    }

    public string Root { get; }

    public string PinDirectory { get; }

    public BpfMap CreatePinned(BpfMapType type, int keySize, int valueSize, int maxEntries, string pinName, uint flags = 0)
    {
        BpfMap map = BpfMap.Create(type, keySize, valueSize, maxEntries, pinName, flags);
        map.Pin(Path.Combine(PinDirectory, pinName));
        return map;
    }

    public void Dispose()
    {
        try
        {
            KernelInfo.Unmount(Root);
        }
        finally
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}
