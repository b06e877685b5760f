using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using CalicoBpf.Adapters;

namespace CalicoBpf.Tests;

/// <summary>
/// The exec session's channels (v4: a channel byte, then data) read from a real WebSocket over
/// loopback TCP, the server side sending as a kubelet does: stdout comes whole and in order, messages
/// in parts (an empty first part too) and empty channel openings included; stderr and the Status are kept; a node that sends
/// faster than the consumer reads waits in TCP's window rather than in our memory.
/// </summary>
public sealed class ExecChannelsTests
{
    private sealed class Pair : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly TcpClient _client = new();
        private readonly TcpClient _server;

        public Pair(int socketBuffer = 0)
        {
            _listener.Start();
            if (socketBuffer > 0)
            {
                _client.ReceiveBufferSize = socketBuffer;
            }

            _client.Connect(IPAddress.Loopback, ((IPEndPoint)_listener.LocalEndpoint).Port);
            _server = _listener.AcceptTcpClient();
            if (socketBuffer > 0)
            {
                _server.SendBufferSize = socketBuffer;
            }

            Server = WebSocket.CreateFromStream(_server.GetStream(), new WebSocketCreationOptions { IsServer = true });
            Client = WebSocket.CreateFromStream(_client.GetStream(), new WebSocketCreationOptions { IsServer = false });
        }

        public WebSocket Server { get; }

        public WebSocket Client { get; }

        public void Dispose()
        {
            Server.Dispose();
            Client.Dispose();
            _server.Dispose();
            _client.Dispose();
            _listener.Stop();
        }
    }

    private static Task Send(WebSocket ws, byte channel, ReadOnlySpan<byte> data, bool end = true)
    {
        byte[] m = new byte[data.Length + 1];
        m[0] = channel;
        data.CopyTo(m.AsSpan(1));
        return ws.SendAsync(m, WebSocketMessageType.Binary, end, CancellationToken.None);
    }

    private static byte[] Pattern(int n) => Enumerable.Range(0, n).Select(i => (byte)(i * 31 + (i >> 9))).ToArray();

    [Fact]
    public async Task Stdout_comes_whole_and_stderr_and_status_are_kept()
    {
        using var pair = new Pair();
        byte[] output = Pattern(3 * 1024 * 1024 + 17);
        const string status = "{\"metadata\":{},\"status\":\"Success\"}";
        Task server = Task.Run(async () =>
        {
            // The kubelet opens each channel with an empty frame.
            foreach (byte c in new byte[] { 1, 2, 3 })
            {
                await Send(pair.Server, c, ReadOnlySpan<byte>.Empty);
            }

            int i = 0, n = 0;
            while (i < output.Length)
            {
                int len = Math.Min(output.Length - i, 1000 + (n++ * 7919 % 100_000));
                if (n % 7 == 0)
                {
                    // A message whose first part is empty: the channel byte opens the second.
                    await pair.Server.SendAsync(Array.Empty<byte>(), WebSocketMessageType.Binary, false, CancellationToken.None);
                    await Send(pair.Server, 1, output.AsSpan(i, len));
                }
                else if (n % 5 == 0 && len > 10)
                {
                    // One message in two parts: the channel byte comes only with the first.
                    await Send(pair.Server, 1, output.AsSpan(i, 10), end: false);
                    await pair.Server.SendAsync(output.AsMemory(i + 10, len - 10), WebSocketMessageType.Binary, true, CancellationToken.None);
                }
                else
                {
                    await Send(pair.Server, 1, output.AsSpan(i, len));
                }

                i += len;
                if (n == 3)
                {
                    await Send(pair.Server, 2, Encoding.UTF8.GetBytes("warning: "));
                }
            }

            await Send(pair.Server, 2, Encoding.UTF8.GetBytes("done"));
            await Send(pair.Server, 3, Encoding.UTF8.GetBytes(status));
            await pair.Server.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        });

        using var channels = new ExecChannels(pair.Client, _ => { });
        var read = new MemoryStream();
        byte[] chunk = new byte[4093];
        int got;
        while ((got = channels.StandardOutput.Read(chunk, 0, chunk.Length)) > 0)
        {
            read.Write(chunk, 0, got);
        }

        channels.ReadToEnd();
        await server;
        Assert.Equal(output.Length, read.Length);
        Assert.True(output.AsSpan().SequenceEqual(read.ToArray()), "stdout differs from what the server sent");
        Assert.Equal("warning: done", Encoding.UTF8.GetString(channels.StandardError));
        Assert.Equal(status, Encoding.UTF8.GetString(channels.Status));
    }

    [Fact]
    public async Task A_consumer_that_does_not_read_holds_the_node_back_instead_of_buffering()
    {
        // KubernetesClient's StreamDemuxer took all of it (up to 40 MB, then failed the session).
        using var pair = new Pair(socketBuffer: 128 * 1024);
        const int total = 64 * 1024 * 1024;
        byte[] frame = Pattern(32 * 1024);
        long sent = 0;
        Task server = Task.Run(async () =>
        {
            for (int i = 0; i < total / frame.Length; i++)
            {
                await Send(pair.Server, 1, frame);
                Interlocked.Add(ref sent, frame.Length);
            }

            await Send(pair.Server, 3, Encoding.UTF8.GetBytes("{\"status\":\"Success\"}"));
            await pair.Server.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        });

        using var channels = new ExecChannels(pair.Client, _ => { });
        Stream stdout = channels.StandardOutput;
        byte[] one = new byte[1];
        Assert.Equal(1, stdout.Read(one, 0, 1));
        // The consumer is busy: what the node manages to send settles at what the sockets hold.
        long before;
        do
        {
            before = Interlocked.Read(ref sent);
            await Task.Delay(300);
        }
        while (Interlocked.Read(ref sent) != before && before < total);
        Assert.True(before < 16 * 1024 * 1024, $"the node sent {before} bytes while nothing was read");

        long read = 1;
        byte[] chunk = new byte[81920];
        int got;
        while ((got = stdout.Read(chunk, 0, chunk.Length)) > 0)
        {
            read += got;
        }

        channels.ReadToEnd();
        await server;
        Assert.Equal(total, read);
        Assert.Contains("Success", Encoding.UTF8.GetString(channels.Status));
    }

    [Fact]
    public async Task Abort_ends_a_read_that_waits_and_the_watchdog_sees_the_wait()
    {
        using var pair = new Pair();
        int waiting = 0;
        using var channels = new ExecChannels(pair.Client, w => Volatile.Write(ref waiting, w ? 1 : 0));
        var reader = Task.Run(() => channels.StandardOutput.Read(new byte[16], 0, 16));
        SpinWait.SpinUntil(() => Volatile.Read(ref waiting) == 1, TimeSpan.FromSeconds(5));
        Assert.Equal(1, Volatile.Read(ref waiting));
        Assert.False(reader.IsCompleted);
        channels.Abort();
        Assert.Same(reader, await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(5))));
        Assert.Equal(0, await reader);
        Assert.Equal(0, Volatile.Read(ref waiting));
        Assert.Empty(channels.Status);
    }

    [Fact]
    public async Task Stdin_goes_in_messages_of_the_frame_size_on_channel_zero()
    {
        using var pair = new Pair();
        byte[] input = Pattern(100_000);
        using var channels = new ExecChannels(pair.Client, _ => { });
        Task sending = channels.SendInput(input, 32 * 1024, CancellationToken.None);
        var got = new MemoryStream();
        var sizes = new List<int>();
        byte[] buffer = new byte[64 * 1024];
        while (got.Length < input.Length)
        {
            var m = new MemoryStream();
            ValueWebSocketReceiveResult r;
            do
            {
                r = await pair.Server.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                m.Write(buffer, 0, r.Count);
            }
            while (!r.EndOfMessage);
            byte[] message = m.ToArray();
            Assert.Equal(0, message[0]);
            sizes.Add(message.Length - 1);
            got.Write(message, 1, message.Length - 1);
        }

        await sending;
        Assert.Equal(new[] { 32768, 32768, 32768, 1696 }, sizes);
        Assert.True(input.AsSpan().SequenceEqual(got.ToArray()));
    }
}
