using System.Diagnostics;

namespace CalicoBpf.Tests.Support;

/// <summary>Runs a command (ip, tc) for test setup; throws with its stderr when it fails.</summary>
public static class Shell
{
    public static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr.Trim()}");
        }

        return stdout;
    }
}

/// <summary>A network namespace the test owns; deleted on dispose, also when the test fails.</summary>
public sealed class NetnsScope : IDisposable
{
    public NetnsScope()
    {
        Kernel.Require();
        Name = "cbt-" + Guid.NewGuid().ToString("N")[..8];
        Shell.Run("ip", "netns", "add", Name);
    }

    public string Name { get; }

    public string Ip(params string[] args) => Shell.Run("ip", new[] { "-n", Name }.Concat(args).ToArray());

    public string Exec(params string[] args) => Shell.Run("ip", new[] { "netns", "exec", Name }.Concat(args).ToArray());

    public void Dispose() => Shell.Run("ip", "netns", "del", Name);
}
