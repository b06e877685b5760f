using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace CalicoBpf.TestCluster;

/// <summary>
/// The scenario's <c>replayedNodes</c> knob: many nodes, cheaply, that answer exec from one recording
/// (see <see cref="ReplayedNode"/>). They are ordinary nodes to the API (a Node object, a calico-node
/// pod); only their execs are answered from the recording instead of run.
/// </summary>
public sealed class ReplayedFleet
{
    /// <summary>The most a scenario may declare: enough for a fleet benchmark, few enough for the fuzzer.</summary>
    public const int MaxCount = 5000;

    /// <summary>How many nodes: PREFIX001, PREFIX002 ... (digits enough for the count).</summary>
    public int Count { get; set; }

    public string NamePrefix { get; set; } = "replayed-";

    /// <summary>The recording (JSON lines of <see cref="ExecRecording"/>), relative to the scenario file.</summary>
    public string Recording { get; set; } = string.Empty;

    /// <summary>Each exec answers this late, as exec through an API server and a kubelet does.</summary>
    public int ExecDelayMilliseconds { get; set; }

    /// <summary>The nodes this declares, or an InvalidDataException naming what is wrong.</summary>
    public IEnumerable<ClusterScenario.NodeSpec> Nodes()
    {
        if (Count is < 1 or > MaxCount || string.IsNullOrEmpty(Recording) || ExecDelayMilliseconds < 0)
        {
            throw new InvalidDataException($"The cluster scenario is not valid: replayedNodes needs a count of 1 to {MaxCount}, a recording and no negative execDelayMilliseconds (count {Count}, recording \"{Recording}\").");
        }

        int digits = Math.Max(3, Count.ToString(CultureInfo.InvariantCulture).Length);
        for (int i = 1; i <= Count; i++)
        {
            yield return new ClusterScenario.NodeSpec
            {
                Name = (NamePrefix ?? string.Empty) + i.ToString("D" + digits, CultureInfo.InvariantCulture),
                Address = $"10.{128 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}",
                Interfaces = new(),
                Replay = Recording,
                ExecDelayMilliseconds = ExecDelayMilliseconds,
            };
        }
    }
}

/// <summary>
/// One exec as a real node answered it: the command and its stdin, what it wrote on stdout and
/// stderr, and the Status frame it ended with (verbatim, as the error channel carried it).
/// </summary>
public sealed record ExecRecording(
    [property: JsonPropertyName("command")] string[] Command,
    [property: JsonPropertyName("stdin")] byte[] Stdin,
    [property: JsonPropertyName("stdout")] byte[] Stdout,
    [property: JsonPropertyName("stderr")] byte[] Stderr,
    [property: JsonPropertyName("status")] string Status)
{
    /// <summary>How the command is named in messages: as the kubelet names it, [argv joined by spaces].</summary>
    public static string Describe(string[] command) => "[" + string.Join(' ', command) + "]";
}

/// <summary>
/// A recording file: one <see cref="ExecRecording"/> per line (stdin, stdout and stderr in base64).
/// When a command with the same stdin was recorded more than once, the first answer is the one replayed.
/// </summary>
public sealed class ExecRecordings
{
    private static readonly object AppendLock = new();

    /// <summary>Commands and Status as typed (quotes, &gt; and &amp; unescaped): a recording is read by people too.</summary>
    private static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly Dictionary<string, List<ExecRecording>> _byCommand;

    private ExecRecordings(string path, Dictionary<string, List<ExecRecording>> byCommand)
    {
        Path = path;
        _byCommand = byCommand;
    }

    public string Path { get; }

    public int Count => _byCommand.Values.Sum(l => l.Count);

    private static string Key(string[] command) => JsonSerializer.Serialize(command);

    public static ExecRecordings Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"The exec recording {path} does not exist: record it first from a real node (a node with record: FILE in its scenario).", path);
        }

        var byCommand = new Dictionary<string, List<ExecRecording>>(StringComparer.Ordinal);
        int line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (text.Length == 0)
            {
                continue;
            }

            ExecRecording r;
            try
            {
                r = JsonSerializer.Deserialize<ExecRecording>(text) ?? throw new JsonException("null");
            }
            catch (JsonException ex)
            {
                throw new InvalidDataException($"The exec recording {path} is not valid at line {line}: {ex.Message}", ex);
            }

            if (r.Command is not { Length: > 0 } || r.Stdin is null || r.Stdout is null || r.Stderr is null || string.IsNullOrEmpty(r.Status))
            {
                throw new InvalidDataException($"The exec recording {path} is not valid at line {line}: each exec needs command, stdin, stdout, stderr and status.");
            }

            string key = Key(r.Command);
            if (!byCommand.TryGetValue(key, out List<ExecRecording>? list))
            {
                byCommand[key] = list = new();
            }

            if (!list.Any(e => e.Stdin.AsSpan().SequenceEqual(r.Stdin)))
            {
                list.Add(r);
            }
        }

        return new ExecRecordings(path, byCommand);
    }

    /// <summary>The recorded answers of this command (one per distinct stdin); empty when it was never recorded.</summary>
    public IReadOnlyList<ExecRecording> For(string[] command) =>
        _byCommand.TryGetValue(Key(command), out List<ExecRecording>? list) ? list : Array.Empty<ExecRecording>();

    /// <summary>Adds one exec at the end of a recording file (concurrent execs write whole lines).</summary>
    public static void Append(string path, ExecRecording recording)
    {
        string line = JsonSerializer.Serialize(recording, Readable) + "\n";
        lock (AppendLock)
        {
            File.AppendAllText(path, line);
        }
    }
}

/// <summary>
/// A node that runs nothing: the API server answers its execs from a recording of a real simulated
/// node (same command and stdin: the recorded stdout, stderr and Status, after the node's exec delay).
/// No process, namespace or map exists for it, so hundreds cost the test machine almost nothing.
/// </summary>
public sealed class ReplayedNode
{
    public ReplayedNode(ClusterScenario.NodeSpec spec, ExecRecordings recordings)
    {
        Spec = spec;
        Recordings = recordings;
    }

    public ClusterScenario.NodeSpec Spec { get; }

    public ExecRecordings Recordings { get; }

    /// <summary>The scenario's replayed nodes by name, each recording read once (a missing or bad one fails here, before anything is created).</summary>
    public static Dictionary<string, ReplayedNode> ForScenario(ClusterScenario scenario)
    {
        var files = new Dictionary<string, ExecRecordings>(StringComparer.Ordinal);
        var nodes = new Dictionary<string, ReplayedNode>(StringComparer.Ordinal);
        foreach (ClusterScenario.NodeSpec n in scenario.Nodes.Where(n => !string.IsNullOrEmpty(n.Replay)))
        {
            string path = System.IO.Path.GetFullPath(n.Replay!, scenario.Directory);
            if (!files.TryGetValue(path, out ExecRecordings? recordings))
            {
                files[path] = recordings = ExecRecordings.Load(path);
            }

            nodes[n.Name] = new ReplayedNode(n, recordings);
        }

        return nodes;
    }

    /// <summary>
    /// The recorded answer to this command and stdin; null when there is none. A Status for an exec
    /// that was not recorded names the command, as an InternalError from the runtime would.
    /// </summary>
    public ExecRecording? Answer(string[] command, ReadOnlySpan<byte> stdin)
    {
        foreach (ExecRecording r in Recordings.For(command))
        {
            if (r.Stdin.AsSpan().SequenceEqual(stdin))
            {
                return r;
            }
        }

        return null;
    }

    public string NotRecorded(string[] command, int stdinBytes) => new System.Text.Json.Nodes.JsonObject
    {
        ["metadata"] = new System.Text.Json.Nodes.JsonObject(),
        ["status"] = "Failure",
        ["message"] = Recordings.For(command).Count == 0
            ? $"Internal error occurred: replayed node {Spec.Name} has no recording of command {ExecRecording.Describe(command)} in {Recordings.Path}: record it from a real node first"
            : $"Internal error occurred: replayed node {Spec.Name} has recordings of command {ExecRecording.Describe(command)} in {Recordings.Path}, but none with the {stdinBytes} bytes of stdin sent: record it from a real node first",
        ["reason"] = "InternalError",
        ["code"] = 500,
    }.ToJsonString();
}

/// <summary>
/// The exec WebSocket of a real node, seen on its way out: every frame the session sends and every
/// stdin frame the client sends are kept, and once the Status frame has gone the exec is appended to
/// the recording. An exec whose connection ends without a Status is not recorded.
/// </summary>
internal sealed class RecordingWebSocket : WebSocket
{
    private readonly WebSocket _inner;
    private readonly string _path;
    private readonly string[] _command;
    private readonly bool _stdin;
    private readonly MemoryStream _stdinBytes = new();
    private readonly MemoryStream _stdout = new();
    private readonly MemoryStream _stderr = new();
    private readonly MemoryStream _sending = new();
    private readonly MemoryStream _receiving = new();
    private int _recorded;

    public RecordingWebSocket(WebSocket inner, string path, string[] command, bool stdin)
    {
        _inner = inner;
        _path = path;
        _command = command;
        _stdin = stdin;
    }

    public override WebSocketCloseStatus? CloseStatus => _inner.CloseStatus;

    public override string? CloseStatusDescription => _inner.CloseStatusDescription;

    public override WebSocketState State => _inner.State;

    public override string? SubProtocol => _inner.SubProtocol;

    public override void Abort() => _inner.Abort();

    public override Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        _inner.CloseAsync(closeStatus, statusDescription, cancellationToken);

    public override Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        _inner.CloseOutputAsync(closeStatus, statusDescription, cancellationToken);

    public override void Dispose() => _inner.Dispose();

    public override async Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken)
    {
        WebSocketReceiveResult r = await _inner.ReceiveAsync(buffer, cancellationToken);
        Received(buffer.AsSpan(0, r.Count), r.EndOfMessage);
        return r;
    }

    public override async ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ValueWebSocketReceiveResult r = await _inner.ReceiveAsync(buffer, cancellationToken);
        Received(buffer.Span[..r.Count], r.EndOfMessage);
        return r;
    }

    public override async Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        await _inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);
        Sent(buffer.AsSpan(), endOfMessage);
    }

    public override async ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        await _inner.SendAsync(buffer, messageType, endOfMessage, cancellationToken);
        Sent(buffer.Span, endOfMessage);
    }

    /// <summary>A client frame: channel 0 is stdin (kept when the exec asked for stdin, as the session then passes it on).</summary>
    private void Received(ReadOnlySpan<byte> data, bool end)
    {
        lock (_receiving)
        {
            _receiving.Write(data);
            if (!end)
            {
                return;
            }

            byte[] frame = _receiving.ToArray();
            _receiving.SetLength(0);
            if (_stdin && frame.Length > 0 && frame[0] == 0 && Volatile.Read(ref _recorded) == 0)
            {
                lock (_stdinBytes)
                {
                    _stdinBytes.Write(frame.AsSpan(1));
                }
            }
        }
    }

    /// <summary>A session frame: 1 stdout, 2 stderr, 3 the Status that ends the exec (then it is recorded).</summary>
    private void Sent(ReadOnlySpan<byte> data, bool end)
    {
        byte[] frame;
        lock (_sending)
        {
            _sending.Write(data);
            if (!end)
            {
                return;
            }

            frame = _sending.ToArray();
            _sending.SetLength(0);
        }

        switch (frame.Length > 0 ? frame[0] : -1)
        {
            case 1:
                lock (_stdout)
                {
                    _stdout.Write(frame.AsSpan(1));
                }

                break;
            case 2:
                lock (_stderr)
                {
                    _stderr.Write(frame.AsSpan(1));
                }

                break;
            case 3 when Interlocked.Exchange(ref _recorded, 1) == 0:
                byte[] stdin;
                lock (_stdinBytes)
                {
                    stdin = _stdinBytes.ToArray();
                }

                ExecRecordings.Append(_path, new ExecRecording(_command, stdin, _stdout.ToArray(), _stderr.ToArray(), Encoding.UTF8.GetString(frame.AsSpan(1))));
                break;
        }
    }
}
