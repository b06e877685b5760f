using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>
/// Exec on replayed nodes (answered from a recording, nothing run) and the recording of a real node's
/// execs (a node with <c>record: FILE</c>): see <see cref="ReplayedNode"/>.
/// </summary>
public sealed partial class ApiServer
{
    /// <summary>Frames of stdout sent at most this long, as the real session's pipe reads are.</summary>
    private const int ReplayFrameBytes = 32 * 1024;

    /// <summary>The scenario's replayed nodes by name (they have no <see cref="SimulatedNode"/>).</summary>
    private Dictionary<string, ReplayedNode> Replayed { get; init; } = new();

    private static bool StdinAsked(HttpContext ctx) => ctx.Request.Query["stdin"] is var si && (si == "true" || si == "1");

    /// <summary>The session's WebSocket, recorded when the node's scenario says <c>record: FILE</c> (relative to the scenario file).</summary>
    private WebSocket Recorded(HttpContext ctx, string nodeName, string[] command, WebSocket ws) =>
        _nodes.TryGetValue(nodeName, out SimulatedNode? node) && !string.IsNullOrEmpty(node.Spec.Record)
            ? new RecordingWebSocket(ws, Path.GetFullPath(node.Spec.Record, _scenario.Directory), command, StdinAsked(ctx))
            : ws;

    /// <summary>
    /// An exec on a replayed node: after the node's delay, the stdin the command was recorded with is
    /// read (when it asked for stdin), then the recorded stdout, stderr and Status are sent and the
    /// socket closed, as a real session ends. An exec that was not recorded ends with a Failure Status
    /// (InternalError) that names the command.
    /// </summary>
    private async Task ReplayAsync(HttpContext ctx, string protocol, ReplayedNode node, string[] command)
    {
        using WebSocket ws = await ctx.WebSockets.AcceptWebSocketAsync(protocol);
        CancellationToken ct = ctx.RequestAborted;
        try
        {
            if (node.Spec.ExecDelayMilliseconds > 0)
            {
                await Task.Delay(node.Spec.ExecDelayMilliseconds, ct);
            }

            byte[] stdin = StdinAsked(ctx) ? await ReceiveRecordedStdin(ws, protocol, node.Recordings.For(command), ct) : Array.Empty<byte>();
            ExecRecording? answer = node.Answer(command, stdin);
            // What the client sends from now on (keep-alive frames, its close) is read as a kubelet reads
            // a session's stdin, all along: left unread, it would make the socket's close a reset, which
            // throws away what the client had not read yet.
            Task drained = Task.Run(async () =>
            {
                byte[] b = new byte[1024];
                try
                {
                    while (await ReceiveMessage(ws, b, ct) is not null)
                    {
                    }
                }
                catch (Exception)
                {
                    // The client left, or the request was aborted.
                }
            });

            async Task Send(byte channel, ReadOnlyMemory<byte> data) =>
                await ws.SendAsync(ChannelFrame(channel, data.Span), WebSocketMessageType.Binary, true, ct);

            if (answer is null)
            {
                await EndExec(ws, node.NotRecorded(command, stdin.Length), ct);
            }
            else
            {
                for (int i = 0; i < answer.Stdout.Length; i += ReplayFrameBytes)
                {
                    await Send(1, answer.Stdout.AsMemory(i, Math.Min(ReplayFrameBytes, answer.Stdout.Length - i)));
                }

                if (answer.Stderr.Length > 0)
                {
                    await Send(2, answer.Stderr);
                }

                await EndExec(ws, answer.Status, ct);
            }

            // Until the client has read it all and answered the close (or left).
            await drained;
        }
        catch (Exception) when (ct.IsCancellationRequested || ws.State != WebSocketState.Open)
        {
            // The client left.
        }
    }

    /// <summary>
    /// The client's stdin, read until it is one the command was recorded with and no longer recording
    /// starts with it (exec over v4 cannot signal its end), until it matches none, or until v5's close
    /// signal or the client's close.
    /// </summary>
    private static async Task<byte[]> ReceiveRecordedStdin(WebSocket ws, string protocol, IReadOnlyList<ExecRecording> candidates, CancellationToken ct)
    {
        var received = new MemoryStream();
        bool Prefix(ExecRecording r) => r.Stdin.AsSpan().StartsWith(received.GetBuffer().AsSpan(0, (int)received.Length));
        bool Done() =>
            !candidates.Any(Prefix)
            || (candidates.Any(r => r.Stdin.Length == received.Length && Prefix(r)) && !candidates.Any(r => r.Stdin.Length > received.Length && Prefix(r)));

        byte[] buffer = new byte[64 * 1024];
        while (!Done() && await ReceiveMessage(ws, buffer, ct) is byte[] frame)
        {
            if (frame.Length > 0 && frame[0] == 0)
            {
                received.Write(frame, 1, frame.Length - 1);
            }
            else if (frame.Length > 1 && frame[0] == 255 && frame[1] == 0 && protocol == "v5.channel.k8s.io")
            {
                break;
            }
        }

        return received.ToArray();
    }
}
