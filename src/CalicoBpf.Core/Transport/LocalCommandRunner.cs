using System.Diagnostics;

namespace CalicoBpf.Transport;

/// <summary>Runs commands as local processes (tests, and reading a node through its own tools).</summary>
public sealed class LocalCommandRunner : ICommandRunner
{
    private readonly IReadOnlyDictionary<string, string>? _environment;

    /// <param name="environment">Variables set for every command (tests put a release's tool stand-ins first on PATH); null: this process's.</param>
    public LocalCommandRunner(string node, IReadOnlyDictionary<string, string>? environment = null)
    {
        Node = node;
        _environment = environment;
    }

    public string Node { get; }

    /// <summary>A bare command name found on the given PATH, as an exec inside the container finds it (.NET would search this process's).</summary>
    private string Resolve(string file) =>
        file.Contains('/') || _environment?.GetValueOrDefault("PATH") is not { } path
            ? file
            : path.Split(':').Select(d => Path.Combine(d, file)).FirstOrDefault(File.Exists) ?? file;

    public ICommandRun Start(IReadOnlyList<string> argv, CancellationToken cancellationToken, ReadOnlyMemory<byte> standardInput = default)
    {
        var psi = new ProcessStartInfo(Resolve(argv[0])) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in argv.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        foreach ((string name, string value) in _environment ?? new Dictionary<string, string>())
        {
            psi.Environment[name] = value;
        }

        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new NodeCommandException(Node, argv, 127, $"{argv[0]} is not installed ({ex.Message})");
        }

        return new Run(Node, argv, p, standardInput, cancellationToken);
    }

    private sealed class Run : ICommandRun
    {
        private readonly string _node;
        private readonly IReadOnlyList<string> _argv;
        private readonly Process _process;
        private readonly Task<string> _stderr;
        private readonly Task _stdin;
        private readonly CancellationTokenRegistration _cancel;

        public Run(string node, IReadOnlyList<string> argv, Process process, ReadOnlyMemory<byte> standardInput, CancellationToken ct)
        {
            _node = node;
            _argv = argv;
            _process = process;
            _stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            // Written while stdout is read (a command may answer before it has read everything), then closed.
            // A command that ends without reading it all makes the write fail: that is its business, not an error here.
            _stdin = Task.Run(async () =>
            {
                try
                {
                    if (!standardInput.IsEmpty)
                    {
                        await process.StandardInput.BaseStream.WriteAsync(standardInput, CancellationToken.None);
                    }

                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                }
            });
            _cancel = ct.Register(() =>
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }
            });
        }

        public Stream StandardOutput => _process.StandardOutput.BaseStream;

        public void Complete()
        {
            _process.WaitForExit();
            _stdin.Wait();
            if (_process.ExitCode != 0)
            {
                throw new NodeCommandException(_node, _argv, _process.ExitCode, _stderr.Result);
            }
        }

        public void Dispose()
        {
            _cancel.Dispose();
            if (!_process.HasExited)
            {
                try
                {
                    _process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }
            }

            _process.Dispose();
        }
    }
}
