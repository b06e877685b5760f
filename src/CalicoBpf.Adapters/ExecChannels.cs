using System.Buffers;
using System.Net.WebSockets;

namespace CalicoBpf.Adapters;

/// <summary>
/// The channels of one pods/exec session (v4: each message is a channel's byte, then its data), read
/// from the socket only when the command's stdout is read. The node's output then waits in TCP's
/// window while the consumer is busy, instead of in memory: KubernetesClient's StreamDemuxer receives
/// as fast as the node sends, into a buffer per channel that grows up to 40 MB (and then fails the
/// session), so 32 nodes read at once behind one pipeline thread held some 59 MB each.
/// stderr and the error channel's Status, both small, are kept as they pass; stdout is never kept.
/// One reader at a time (stdout's reads, then <see cref="ReadToEnd"/>); stdin may be sent meanwhile.
/// </summary>
internal sealed class ExecChannels : IDisposable
{
    internal const byte StdIn = 0;
    internal const byte StdOut = 1;
    internal const byte StdErr = 2;
    internal const byte Error = 3;

    /// <summary>What one receive takes from the socket; a longer message comes in parts.</summary>
    private const int ReceiveSize = 64 * 1024;

    /// <summary>stderr beyond this is dropped (a command's complaint, not its output).</summary>
    private const int StandardErrorLimit = 1024 * 1024;

    private readonly WebSocket _socket;
    private readonly Action<bool> _waiting;
    private readonly Action _outputEnded;
    private readonly MemoryStream _stderr = new();
    private readonly MemoryStream _status = new();
    private byte[]? _buffer = ArrayPool<byte>.Shared.Rent(ReceiveSize);
    private int _pending; // stdout bytes received and not yet read, at _pendingStart of _buffer
    private int _pendingStart;
    private byte _channel; // the channel of the message being received
    private bool _atMessageStart = true;
    private bool _ended;

    /// <param name="socket">The exec session's socket; disposed with this.</param>
    /// <param name="waiting">Told true before each receive waits for the node and false after (the watchdog times those waits).</param>
    /// <param name="outputEnded">Called as stdout's read comes to its end; it may throw instead (a session the watchdog closed).</param>
    public ExecChannels(WebSocket socket, Action<bool> waiting, Action? outputEnded = null)
    {
        _socket = socket;
        _waiting = waiting;
        _outputEnded = outputEnded ?? (() => { });
    }

    /// <summary>The command's stdout, read from the socket as it is read.</summary>
    public Stream StandardOutput => new OutputStream(this);

    /// <summary>What came on stderr so far (all of it after <see cref="ReadToEnd"/>), up to 1 MB.</summary>
    public byte[] StandardError => _stderr.ToArray();

    /// <summary>The error channel's Status so far (all of it after <see cref="ReadToEnd"/>).</summary>
    public byte[] Status => _status.ToArray();

    /// <summary>
    /// Reads the session to its end (the node's close, or a dropped connection), dropping any stdout not
    /// read: afterwards <see cref="StandardError"/> and <see cref="Status"/> are whole.
    /// </summary>
    public void ReadToEnd()
    {
        _pending = 0;
        while (Receive())
        {
            _pending = 0;
        }
    }

    /// <summary>Sends bytes on stdin, in messages of at most <paramref name="frame"/> bytes.</summary>
    public async Task SendInput(ReadOnlyMemory<byte> input, int frame, CancellationToken cancellationToken)
    {
        byte[] message = new byte[Math.Min(frame, input.Length) + 1];
        message[0] = StdIn;
        for (int i = 0; i < input.Length; i += frame)
        {
            int n = Math.Min(frame, input.Length - i);
            input.Slice(i, n).CopyTo(message.AsMemory(1));
            await _socket.SendAsync(message.AsMemory(0, n + 1), WebSocketMessageType.Binary, true, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Ends the session now: a read waiting for the node returns the end of its stream.</summary>
    public void Abort() => _socket.Abort();

    public void Dispose()
    {
        _socket.Dispose();
        byte[]? buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private int ReadOutput(Span<byte> destination)
    {
        while (_pending == 0)
        {
            if (!Receive())
            {
                _outputEnded();
                return 0;
            }
        }

        int n = Math.Min(_pending, destination.Length);
        _buffer.AsSpan(_pendingStart, n).CopyTo(destination);
        _pendingStart += n;
        _pending -= n;
        return n;
    }

    /// <summary>
    /// Receives the next part of a message: stdout is left pending in the buffer, stderr and the Status
    /// kept. False at the end of the session (closed, aborted or dropped: the Status tells which).
    /// </summary>
    private bool Receive()
    {
        if (_ended || _buffer is not { } buffer)
        {
            return false;
        }

        ValueWebSocketReceiveResult r;
        _waiting(true);
        try
        {
            r = _socket.ReceiveAsync(buffer.AsMemory(0, ReceiveSize), CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // Aborted (Ctrl+C, the watchdog, Dispose) or dropped: the end of every channel, as the demuxer had it.
            _ended = true;
            return false;
        }
        finally
        {
            _waiting(false);
        }

        if (r.MessageType == WebSocketMessageType.Close)
        {
            _ended = true;
            return false;
        }

        int start = 0;
        if (_atMessageStart)
        {
            if (r.Count == 0)
            {
                // An empty message, or an empty first part of one: its channel byte is still to come.
                return true;
            }

            _channel = buffer[0];
            start = 1;
        }

        _atMessageStart = r.EndOfMessage;
        int length = r.Count - start;
        switch (_channel)
        {
            case StdOut:
                _pendingStart = start;
                _pending = length;
                break;
            case StdErr:
                _stderr.Write(buffer, start, Math.Min(length, Math.Max(0, StandardErrorLimit - (int)_stderr.Length)));
                break;
            case Error:
                _status.Write(buffer, start, length);
                break;
        }

        return true;
    }

    private sealed class OutputStream : Stream
    {
        private readonly ExecChannels _channels;

        public OutputStream(ExecChannels channels) => _channels = channels;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => _channels.ReadOutput(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer) => _channels.ReadOutput(buffer);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
