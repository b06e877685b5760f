// Its own using lines: tests/CalicoBpf.TestCluster.Tests compiles this file too, without Core.Tests' global usings.
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

    /// <summary>
    /// The directory of bpftool 7.5 as calico-node ships it from v3.30 (the machine's may be older:
    /// Debian bookworm's 7.1 lists no TCX or netkit entry). tests/tools/get-bpftool75.sh puts it there;
    /// CALICOBPF_BPFTOOL75 names another. Skips when missing; with CI=true fails.
    /// </summary>
    public static string Bpftool75Directory()
    {
        string path = Environment.GetEnvironmentVariable("CALICOBPF_BPFTOOL75") is { Length: > 0 } given ? given : "/var/cache/calicobpf/bpftool-7.5/bpftool";
        if (File.Exists(path))
        {
            return Path.GetDirectoryName(path)!;
        }

        if (InCi)
        {
            throw new InvalidOperationException($"bpftool 7.5 is needed at {path} (.ci/run puts it there with tests/tools/get-bpftool75.sh).");
        }

        Skip.If(true, $"bpftool 7.5 is not at {path}: run tests/tools/get-bpftool75.sh.");
        return string.Empty;
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

/// <summary>
/// A fresh cgroup v2 directory and a bpffs with a ctlb link directory, for connect-time programs:
/// the links (and with them the attachments) and the cgroup go when the test ends, also on failure.
/// </summary>
public sealed class CgroupScope : IDisposable
{
    private readonly BpfFsScope _fs;

    public CgroupScope()
    {
        _fs = new BpfFsScope();
        string? root = Maps.ConnectTime.Cgroup2Mount();
        if (root is null)
        {
            _fs.Dispose();
            Skip.If(!Kernel.InCi, "no cgroup v2 hierarchy is mounted");
            throw new InvalidOperationException("No cgroup v2 hierarchy is mounted, and CI=true forbids skipping.");
        }

        Cgroup = Path.Combine(root, "calicobpf-test-" + Guid.NewGuid().ToString("N")[..8]);
        Links = Path.Combine(_fs.Root, "ctlb");
        Directory.CreateDirectory(Cgroup);
        Directory.CreateDirectory(Links);
    }

    public string Cgroup { get; }

    public string Links { get; }

    public BpfFsScope Fs => _fs;

    /// <summary>Attaches an allow-all program at a hook, held by a link pinned as <paramref name="pinName"/>.</summary>
    public void Attach(CgroupAttachType type, string programName, string pinName) =>
        BpfPrograms.AttachAllowAllToCgroup(Cgroup, (uint)type, programName, Path.Combine(Links, pinName));

    public void Dispose()
    {
        try
        {
            foreach (string link in Directory.Exists(Links) ? Directory.EnumerateFileSystemEntries(Links) : Array.Empty<string>())
            {
                File.Delete(link);
            }

            Directory.Delete(Cgroup); // rmdir: only possible once nothing holds the cgroup
        }
        finally
        {
            _fs.Dispose();
        }
    }
}
