using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

public sealed partial class CommandDataplane
{
    /// <summary>
    /// bpftool -j map dump of one or more pins in one exec, gzip'd on the node (bpftool spells each
    /// byte as "0x00", 7 characters; gzip shrinks that about twentyfold before it crosses the exec
    /// stream). Each dump is one line after a "@@map path" line. A missing tool is exit code 127.
    /// </summary>
    private sealed class DumpSession : IDisposable
    {
        /// <remarks>The pins come on stdin (<see cref="ReadPaths"/>): counting every map of a node names them all.</remarks>
        private const string Script = NeedBpftool + NeedGzip +
            ReadPaths + "printf '@@map %s\\n' \"$p\"; bpftool -j map dump pinned \"$p\"; printf '\\n'; done | gzip -1";

        /// <summary>The same, with each dump preceded by "@@show path" and bpftool's description of the map.</summary>
        private const string DescribeScript = NeedBpftool + NeedGzip +
            ReadPaths + "printf '@@show %s\\n' \"$p\"; bpftool -j map show pinned \"$p\"; printf '@@map %s\\n' \"$p\"; bpftool -j map dump pinned \"$p\"; printf '\\n'; done | gzip -1";

        private readonly CommandDataplane _node;
        private readonly ICommandRun _run;
        private readonly System.IO.Compression.GZipStream _text;
        private readonly LineSections _lines;
        private readonly CancellationToken _cancellationToken;
        private string _current;

        public DumpSession(CommandDataplane node, IReadOnlyList<string> paths, CancellationToken cancellationToken, bool describe = false)
            : this(node, describe ? DescribeScript : Script, new[] { paths.Count.ToString(CultureInfo.InvariantCulture) }, paths[0], cancellationToken, PathLines(paths))
        {
        }

        private DumpSession(CommandDataplane node, string script, IReadOnlyList<string> arguments, string current, CancellationToken cancellationToken, ReadOnlyMemory<byte> input = default)
        {
            _node = node;
            _cancellationToken = cancellationToken;
            _current = current;
            _run = node._runner.Start(new[] { "sh", "-c", script, "dump" }.Concat(arguments).ToList(), cancellationToken, input);
            _text = new System.IO.Compression.GZipStream(_run.StandardOutput, System.IO.Compression.CompressionMode.Decompress);
            _lines = new LineSections(_text);
        }

        /// <summary>A session running any script whose output is gzip'd lines (the probe with a dump).</summary>
        public static DumpSession Start(CommandDataplane node, string script, IReadOnlyList<string> arguments, string current, CancellationToken cancellationToken) =>
            new(node, script, arguments, current, cancellationToken);

        /// <summary>The next non-empty line, or null at the end of the output.</summary>
        public string? ReadHeader() => _lines.ReadLine();

        /// <summary>The next "@@show path" section (a pin the script picked): its path and description; null at the end.</summary>
        public (string Path, BpfMapDescriptor Descriptor)? DescribeNext()
        {
            string? header = _lines.ReadLine();
            if (header is null || !header.StartsWith("@@show ", StringComparison.Ordinal))
            {
                return null;
            }

            string path = header[7..];
            string? json = _lines.ReadLine();
            if (json is null || !json.StartsWith('{') || BpftoolJsonReader.ErrorMessage(Encoding.UTF8.GetBytes(json)) is not null)
            {
                return null;
            }

            using JsonDocument doc = JsonDocument.Parse(json);
            _current = path;
            return (path, CommandDataplane.Descriptor(doc.RootElement, path[(path.LastIndexOf('/') + 1)..]));
        }

        /// <summary>The description of the next pin (a session started with describe), or the error bpftool gave for it.</summary>
        public BpfMapDescriptor Describe(string path, string pinName)
        {
            _current = path;
            string? header = _lines.ReadLine();
            string? json = header == "@@show " + path ? _lines.ReadLine() : null;
            if (json is null || !json.StartsWith('{'))
            {
                throw new BpfException($"Describing {path} on {_node.Node} gave {(header is null ? "no output" : "unexpected output")}.", 0, path);
            }

            if (BpftoolJsonReader.ErrorMessage(Encoding.UTF8.GetBytes(json)) is { } error)
            {
                throw BpftoolFailure(_node.Node, path, error, null);
            }

            using JsonDocument doc = JsonDocument.Parse(json);
            return CommandDataplane.Descriptor(doc.RootElement, pinName);
        }

        /// <summary>The dump of the next pin, which must be <paramref name="path"/>, as a stream.</summary>
        public Stream Next(string path)
        {
            _current = path;
            string? header = _lines.ReadLine();
            if (header != "@@map " + path)
            {
                throw new BpfException($"Dumping maps of {_node.Node} gave {(header is null ? "no more output" : "unexpected output")} where the dump of {path} was expected.", 0, path);
            }

            return _lines.OpenLine();
        }

        /// <summary>
        /// Runs one step of reading. A cut-short stream fails with the command's outcome (non-zero
        /// exit, a dropped connection), which says why better than half a JSON does.
        /// </summary>
        public T Guard<T>(Func<T> step)
        {
            try
            {
                return step();
            }
            catch (Exception ex) when (ex is BpfException or InvalidDataException or IOException && !_cancellationToken.IsCancellationRequested)
            {
                Complete();
                throw;
            }
        }

        /// <summary>Waits for the command's outcome; a failure becomes the error of the pin read last.</summary>
        public void Complete()
        {
            try
            {
                _run.Complete();
            }
            catch (NodeCommandException ex) when (ex.ExitCode != 127)
            {
                throw BpftoolError(ex, _current);
            }
        }

        public void Dispose()
        {
            _text.Dispose();
            _run.Dispose();
        }
    }
}
