using System.Diagnostics;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace CalicoBpf.Tests;

/// <summary>
/// Runs the realcalico harness (../shared/realcalico from the repository root): Calico's own tc
/// programs on veths in a private bpffs (/tmp/rcal-bpffs, never /sys/fs/bpf), driven with real
/// traffic. The pins are read with <see cref="LocalDataplane"/> through bpf(2) and checked with the
/// same <see cref="RealCalicoExpectations"/> as the captured fixtures. The harness is torn down
/// afterwards, also when a check fails. Without the harness the test skips; it needs root, and
/// with CI=true not being root is a failure.
/// </summary>
public sealed class RealCalicoLiveTests
{
    private const string Lock = "/tmp/rcal.lock";
    private readonly ITestOutputHelper _output;

    public RealCalicoLiveTests(ITestOutputHelper output) => _output = output;

    [SkippableTheory]
    [InlineData("87c15906f20c")]
    [InlineData("v3.30.7")]
    public void Calicos_programs_write_what_the_module_reads(string release)
    {
        string harness = RealCalicoPaths.Harness();
        Skip.IfNot(File.Exists(Path.Combine(harness, "setup.sh")), $"The realcalico harness is not here ({harness}, ../shared/realcalico from the repository root).");
        Skip.IfNot(Directory.Exists(Path.Combine(harness, "objects", release)), $"The harness has no objects for release {release}.");
        Kernel.Require();
        WaitForLock();

        string outdir = Directory.CreateTempSubdirectory("calicobpf-rcal-").FullName;
        try
        {
            (int rc, string output) = Run(Path.Combine(harness, "setup.sh"), TimeSpan.FromMinutes(3), "-r", release, outdir);
            if (rc != 0)
            {
                throw new XunitException($"setup.sh -r {release} failed with exit code {rc}:\n{output}");
            }

            RealCalicoRecord sent = RealCalicoRecord.Load(outdir);
            var node = new LocalDataplane(sent.PinPath, "rcal");
            // setup.sh copies Calico's lines from /sys/kernel/tracing/trace; empty when tracefs is not mounted there.
            string[] trace = File.Exists(Path.Combine(outdir, "trace.txt")) ? File.ReadAllLines(Path.Combine(outdir, "trace.txt")) : Array.Empty<string>();
            var source = new RealCalicoExpectations.Source(release, node, sent, trace.Length > 0 ? trace : null);

            var failures = new List<string>();
            foreach ((string name, Action<RealCalicoExpectations.Source> check) in RealCalicoExpectations.All)
            {
                if (name == "trace-lines" && source.TraceLines is null)
                {
                    _output.WriteLine($"{name}: not checked, setup.sh captured no trace lines (tracefs is not mounted at /sys/kernel/tracing).");
                    continue;
                }

                try
                {
                    check(source);
                    _output.WriteLine($"{name}: holds");
                }
                catch (XunitException ex)
                {
                    failures.Add($"[{name}] {ex.Message}");
                }
            }

            try
            {
                DropsOfTheDeniedWorkload(node, source.TraceLines is not null);
                _output.WriteLine("drops-live: holds");
            }
            catch (XunitException ex)
            {
                failures.Add($"[drops-live] {ex.Message}");
            }

            if (failures.Count > 0)
            {
                throw new XunitException($"{failures.Count} check(s) fail on the live maps of {release}:\n" + string.Join("\n", failures));
            }
        }
        finally
        {
            TearDown(harness, outdir);
        }
    }

    /// <summary>
    /// Get-BpfDrop on Calico's own programs: three more datagrams from the denied workload (netns rcal-ws2,
    /// Felix's deny-all on rcal-h1) in one window are three drops by policy at rcal-h1's TC ingress, where
    /// Calico counts them, and, with the trace buffer there, the lines of the newest dropped packets (up to
    /// three), each ending in the drop program's "DENY due to policy" (the harness writes no cali_iface entry, so
    /// the packets' -E tag is matched to the one hook that dropped).
    /// </summary>
    private static void DropsOfTheDeniedWorkload(LocalDataplane node, bool traced)
    {
        var sampler = new Sampling.DropSampler();
        var query = new Sampling.DropQuery(n => n.StartsWith("rcal-h", StringComparison.Ordinal), null, null, null);
        Assert.Empty(sampler.Sample(node, new Sampling.SampleTick(0, DateTime.UtcNow), query, NullReporter.Instance, default));
        Shell.Run("ip", "netns", "exec", "rcal-ws2", "bash", "-c", "for i in 1 2 3; do echo x > /dev/udp/10.78.1.1/18081; done");
        PacketDrop drop = Assert.Single(sampler.Sample(node, new Sampling.SampleTick(1, DateTime.UtcNow), query, NullReporter.Instance, default));
        Assert.Equal(("rcal-h1", PolicyHook.Ingress, "DroppedByPolicy", "dropped by policy", 3UL), (drop.Interface, drop.Hook, drop.Id, drop.Reason, drop.Count));
        if (traced)
        {
            // The harness keeps the trace buffer small: the newest of the three packets are there whole,
            // each from its first line (with its IP header line) to its DENY.
            int denies = drop.TraceLines.Count(l => l.EndsWith(": DENY due to policy", StringComparison.Ordinal));
            Assert.InRange(denies, 1, 3);
            Assert.Equal(denies, drop.TraceLines.Count(l => l.EndsWith(": IP s=10.78.1.2 d=10.78.1.1", StringComparison.Ordinal)));
            Assert.Equal(denies, drop.TraceLines.Count(l => l.Contains(": New packet at ifindex=", StringComparison.Ordinal)));
        }
    }

    /// <summary>One harness run per machine: wait a while for another run to finish, then give up.</summary>
    private static void WaitForLock()
    {
        DateTime until = DateTime.UtcNow.AddMinutes(2);
        while (Directory.Exists(Lock) && DateTime.UtcNow < until)
        {
            Thread.Sleep(1000);
        }

        if (Directory.Exists(Lock))
        {
            string owner = File.Exists(Path.Combine(Lock, "owner")) ? File.ReadAllText(Path.Combine(Lock, "owner")).Trim() : "unknown";
            string why = $"Another realcalico run holds {Lock} ({owner}) for more than two minutes.";
            if (Kernel.InCi)
            {
                throw new InvalidOperationException(why + " CI=true forbids skipping.");
            }

            Skip.If(true, why);
        }
    }

    /// <summary>Tears down only a run this test started (the lock names its outdir), never another one.</summary>
    private void TearDown(string harness, string outdir)
    {
        string? owner = File.Exists(Path.Combine(Lock, "outdir")) ? File.ReadAllText(Path.Combine(Lock, "outdir")).Trim() : null;
        if (owner == outdir)
        {
            (int rc, string output) = Run(Path.Combine(harness, "teardown.sh"), TimeSpan.FromMinutes(1), outdir, "--rm");
            if (rc != 0)
            {
                _output.WriteLine($"teardown.sh {outdir} --rm failed ({rc}): {output}");
            }
        }

        if (Directory.Exists(outdir))
        {
            Directory.Delete(outdir, recursive: true);
        }
    }

    private static (int ExitCode, string Output) Run(string file, TimeSpan timeout, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start.");
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        bool finished = p.WaitForExit(timeout);
        if (!finished)
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }

        // The harness leaves its traffic processes running until teardown; should one of them hold the
        // pipes open, the output read so far is enough.
        Task.WaitAll(new Task[] { stdout, stderr }, TimeSpan.FromSeconds(10));
        string text = (stdout.IsCompletedSuccessfully ? stdout.Result : string.Empty) + (stderr.IsCompletedSuccessfully ? stderr.Result : string.Empty);
        return finished ? (p.ExitCode, text) : (-1, $"{file} did not finish within {timeout}.\n{text}");
    }
}
