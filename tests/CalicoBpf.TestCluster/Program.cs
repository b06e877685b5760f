using System.Runtime.InteropServices;
using CalicoBpf.TestCluster;

// CalicoBpf.TestCluster --scenario FILE [--port N] [--kubeconfig FILE] [--token NAME] [--max-request-line BYTES] [--no-stdin]
// Starts the test cluster (TestClusterHost, as in-process tests do), writes a kubeconfig, prints
// "ready <url>", and serves until stdin closes (unless --no-stdin), SIGINT or SIGTERM; then removes
// every namespace, mount and map it created.
// --max-request-line: the longest request line served (default 8192, as a front-end proxy); longer: 414.
string? scenarioPath = null, kubeconfigPath = null;
string token = "admin-token";
int port = 0;
int maxRequestLine = ApiServer.DefaultMaxRequestLineBytes;
for (int i = 0; i < args.Length - 1; i++)
{
    switch (args[i])
    {
        case "--scenario": scenarioPath = args[++i]; break;
        case "--port": port = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--kubeconfig": kubeconfigPath = args[++i]; break;
        case "--token": token = args[++i]; break;
        case "--max-request-line": maxRequestLine = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
    }
}

if (scenarioPath is null)
{
    Console.Error.WriteLine("usage: CalicoBpf.TestCluster --scenario FILE [--port N] [--kubeconfig FILE] [--token NAME] [--max-request-line BYTES] [--no-stdin]");
    return 2;
}

TestClusterHost host;
try
{
    host = await TestClusterHost.StartAsync(scenarioPath, new TestClusterOptions { Port = port, MaxRequestLineBytes = maxRequestLine, Token = token, KubeconfigPath = kubeconfigPath });
}
catch (Exception ex) when (ex is InvalidDataException or FormatException or FileNotFoundException or DirectoryNotFoundException)
{
    // A scenario the cluster cannot serve: say which file and what is wrong in it, nothing else.
    Console.Error.WriteLine($"CalicoBpf.TestCluster: {scenarioPath}: {ex.Message}");
    return 2;
}

await using TestClusterHost running = host;
Console.WriteLine("ready " + host.Url);
var stop = new CancellationTokenSource();
// SIGINT, SIGTERM or the end of stdin stop the server; the normal exit path then removes what it created.
using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
if (!args.Contains("--no-stdin"))
{
    _ = Task.Run(() => { Console.In.ReadToEnd(); stop.Cancel(); });
}
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}

return 0;
