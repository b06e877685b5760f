using System.Diagnostics;
using System.Text.RegularExpressions;

namespace CalicoBpf.TestCluster.Tests.Support;

/// <summary>What one kubectl run printed, and how it ended.</summary>
public sealed record KubectlResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stdout's lines.</summary>
    public string[] Lines => SplitLines(Stdout);

    /// <summary>Stdout without its last line break (jsonpath output, a single name).</summary>
    public string Text => string.Join('\n', Lines);

    /// <summary>Stdout's lines, then stderr's: kubectl's messages go to stderr.</summary>
    public string[] AllLines => Lines.Concat(SplitLines(Stderr)).ToArray();

    /// <summary>Every line of both streams joined by spaces, as a test reads an error that kubectl wraps over lines.</summary>
    public string Joined => string.Join(' ', AllLines);

    private static string[] SplitLines(string text) => text.Length == 0 ? Array.Empty<string>() : text.TrimEnd('\n').Split('\n');
}

/// <summary>The real kubectl, run as a process with one kubeconfig (never the environment's KUBECONFIG).</summary>
public sealed class Kubectl
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public Kubectl(string kubeconfig) => Kubeconfig = kubeconfig;

    /// <summary>kubectl on PATH; null when there is none.</summary>
    public static string? Program { get; } = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
        .Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, "kubectl"))
        .FirstOrDefault(f => File.Exists(f) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(f) & UnixFileMode.UserExecute) != 0));

    public string Kubeconfig { get; }

    /// <summary>
    /// Skips the test when kubectl is not on PATH. As in the Pester suites these tests came from, this
    /// skips with CI=true too; the kernel precondition is the one CI=true turns into a failure.
    /// </summary>
    public static void Require() => Skip.If(Program is null, "kubectl is not on PATH: the test cluster's kubectl tests are skipped.");

    /// <summary>kubectl ARGS, to its end (at most a minute).</summary>
    public KubectlResult Run(params string[] args) => RunWithStdin(null, args);

    /// <summary>kubectl ARGS with <paramref name="stdin"/> on its standard input, which then ends.</summary>
    public KubectlResult RunWithStdin(string? stdin, params string[] args)
    {
        using Process p = Start(args);
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
        }

        p.StandardInput.Close();
        if (!p.WaitForExit(Timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"kubectl {string.Join(' ', args)} did not end within {Timeout.TotalSeconds} s.");
        }

        return new KubectlResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>kubectl ARGS started, its output redirected: for what runs until it is stopped (a watch, an exec that blocks).</summary>
    public Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo(Program ?? throw new InvalidOperationException("kubectl is not on PATH."))
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("--kubeconfig");
        psi.ArgumentList.Add(Kubeconfig);
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Remove("KUBECONFIG");
        return Process.Start(psi)!;
    }
}

/// <summary>Assertions as the suites read kubectl's output.</summary>
public static class Lines
{
    /// <summary>The Nth column of a table line (columns split on runs of white space).</summary>
    public static string Column(string line, int n) => Regex.Split(line.Trim(), @"\s+")[n];

    /// <summary>How many lines match the pattern.</summary>
    public static int Matching(IEnumerable<string> lines, string pattern) => lines.Count(l => Regex.IsMatch(l, pattern));
}
