using System.Globalization;

namespace CalicoBpf.TestCluster;

/// <summary>How an in-process test cluster listens, and the kubeconfig it writes.</summary>
public sealed record TestClusterOptions
{
    /// <summary>The port on 127.0.0.1; 0 (the default) takes a free one.</summary>
    public int Port { get; init; }

    /// <summary>The longest request line served; longer ones are refused with 414 URI Too Long. Tests keep the default.</summary>
    public int MaxRequestLineBytes { get; init; } = ApiServer.DefaultMaxRequestLineBytes;

    /// <summary>The scenario token the kubeconfig carries.</summary>
    public string Token { get; init; } = "admin-token";

    /// <summary>Where the kubeconfig goes (the caller's file: it stays); by default in the host's own folder, removed with it.</summary>
    public string? KubeconfigPath { get; init; }
}

/// <summary>
/// The test cluster in this process: the one entry that starts it (Program.cs for the command line,
/// the xunit fixtures in-process). Disposing it removes every network namespace, mount, map and
/// container its nodes created and the files it wrote; a host still running when the process exits
/// (a test run stopped half way) is disposed then.
/// </summary>
public sealed class TestClusterHost : IAsyncDisposable
{
    private static readonly HashSet<TestClusterHost> Running = new();
    private static int _started;
    private readonly string _directory;
    private Task? _stopping;

    static TestClusterHost()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            TestClusterHost[] left;
            lock (Running)
            {
                left = Running.ToArray();
            }

            foreach (TestClusterHost host in left)
            {
                host.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        };
    }

    private TestClusterHost(ApiServer server, string runId)
    {
        Server = server;
        RunId = runId;
        _directory = Path.Combine(Path.GetTempPath(), "calicobpf-testcluster-" + runId);
    }

    /// <summary>The API server: its store, request counts and nodes' processes, for tests that look behind the API.</summary>
    public ApiServer Server { get; }

    /// <summary>https://127.0.0.1:PORT</summary>
    public string Url => Server.Url;

    /// <summary>A kubeconfig for the options' token (admin-token by default).</summary>
    public string KubeconfigPath { get; private set; } = string.Empty;

    /// <summary>
    /// What names the nodes' network namespaces (cbk-RUNID-NODE) and folders (/tmp/cbk-RUNID-NODE): this
    /// process's id in hex for its first cluster, with "-N" for the Nth after it, so clusters started
    /// side by side in one process never share a name.
    /// </summary>
    public string RunId { get; }

    /// <summary>Starts the cluster of a scenario file (paths in it are relative to the file).</summary>
    public static Task<TestClusterHost> StartAsync(string scenarioPath, TestClusterOptions? options = null) =>
        StartAsync(ClusterScenario.Load(scenarioPath), options);

    /// <summary>Starts the cluster of a scenario: its nodes, then the API server, then the kubeconfig.</summary>
    public static async Task<TestClusterHost> StartAsync(ClusterScenario scenario, TestClusterOptions? options = null)
    {
        options ??= new TestClusterOptions();
        int n = Interlocked.Increment(ref _started);
        string runId = Environment.ProcessId.ToString("x", CultureInfo.InvariantCulture) + (n == 1 ? string.Empty : "-" + n.ToString(CultureInfo.InvariantCulture));
        ApiServer server = await ApiServer.StartAsync(scenario, options.Port, options.MaxRequestLineBytes, runId);
        var host = new TestClusterHost(server, runId);
        lock (Running)
        {
            Running.Add(host);
        }

        try
        {
            host.KubeconfigPath = options.KubeconfigPath is { } given ? host.Write(given, options.Token) : host.WriteKubeconfig(options.Token);
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }

        return host;
    }

    /// <summary>A kubeconfig for another of the scenario's tokens, in the host's folder (removed with it).</summary>
    public string WriteKubeconfig(string token)
    {
        if (token.Length == 0 || token.IndexOfAny(new[] { '/', '\0' }) >= 0 || token is "." or "..")
        {
            throw new ArgumentException($"\"{token}\" cannot name a file.", nameof(token));
        }

        Directory.CreateDirectory(_directory);
        return Write(Path.Combine(_directory, "kubeconfig-" + token), token);
    }

    private string Write(string path, string token)
    {
        File.WriteAllText(path, Server.Kubeconfig(token));
        return path;
    }

    /// <summary>Stops the server, removes what the nodes created and the host's folder; a second call waits for the first.</summary>
    public ValueTask DisposeAsync()
    {
        lock (Running)
        {
            _stopping ??= StopAsync();
            return new ValueTask(_stopping);
        }
    }

    private async Task StopAsync()
    {
        try
        {
            await Server.DisposeAsync();
        }
        finally
        {
            if (Directory.Exists(_directory))
            {
                Directory.Delete(_directory, recursive: true);
            }

            lock (Running)
            {
                Running.Remove(this);
            }
        }
    }
}
