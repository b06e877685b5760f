using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>
/// pods/exec: the request checked as the API server checks it (pod, container, command, the
/// WebSocket upgrade and its subprotocol), then answered by a replayed node, a fault knob, the
/// runtime's "not found" for a program the image lacks, or the command run in the node's calico-node
/// container (<see cref="RunInContainer"/>); the frames and Status objects of the stream protocols.
/// </summary>
public sealed partial class ApiServer
{
    private static readonly string[] ExecProtocols = { "v5.channel.k8s.io", "v4.channel.k8s.io" };

    private async Task Exec(HttpContext ctx, string ns, string name)
    {
        Interlocked.Increment(ref _activeExecs);
        try
        {
            await ExecSession(ctx, ns, name);
        }
        finally
        {
            Interlocked.Decrement(ref _activeExecs);
        }
    }

    private async Task ExecSession(HttpContext ctx, string ns, string name)
    {
        JsonObject pod = Store.Get(ScenarioObjects.Pods, ns, name);
        string[] command = ctx.Request.Query["command"].Where(c => c is not null).Select(c => c!).ToArray();
        CheckContainer(ctx, pod, name);
        if (!ctx.WebSockets.IsWebSocketRequest || command.Length == 0)
        {
            throw new ApiError(400, "BadRequest", command.Length == 0 ? "you must specify at least 1 command" : "Upgrade request required");
        }

        string protocol = ctx.WebSockets.WebSocketRequestedProtocols.FirstOrDefault(p => ExecProtocols.Contains(p))
            ?? throw new ApiError(400, "BadRequest", "the exec stream needs one of the subprotocols " + string.Join(", ", ExecProtocols));

        string nodeName = pod["spec"]!["nodeName"]!.GetValue<string>();
        if (Replayed.TryGetValue(nodeName, out ReplayedNode? replayed))
        {
            await ReplayAsync(ctx, protocol, replayed, command);
            return;
        }

        using WebSocket ws = Recorded(ctx, nodeName, command, await ctx.WebSockets.AcceptWebSocketAsync(protocol));
        SimulatedNode node = _nodes[nodeName];
        if (node.Spec.ExecDelayMilliseconds > 0)
        {
            await Task.Delay(node.Spec.ExecDelayMilliseconds, ctx.RequestAborted);
        }

        if (await AnsweredByExecFault(ws, node, command, ctx.RequestAborted))
        {
            return;
        }

        if (node.MissingExecutable(command[0]) is string missing)
        {
            // As containerd answers it: the runtime finds no such executable in the container, so no process
            // starts and there is no exit code, only an internal error.
            await EndExec(ws, InternalError($"error executing command in container: failed to exec in container: failed to start exec \"{Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant()}\": " +
                $"OCI runtime exec failed: exec failed: unable to start container process: {missing}: unknown").ToJsonString(), ctx.RequestAborted);
            return;
        }

        await RunInContainer(ctx, ws, node, command, protocol);
    }

    /// <summary>One frame of the exec stream protocols (v4, v5): the channel's byte, then the data.</summary>
    private static byte[] ChannelFrame(byte channel, ReadOnlySpan<byte> data)
    {
        byte[] frame = new byte[data.Length + 1];
        frame[0] = channel;
        data.CopyTo(frame.AsSpan(1));
        return frame;
    }

    /// <summary>The next whole message from the client (a frame may come in parts); null when it closes.</summary>
    private static async Task<byte[]?> ReceiveMessage(WebSocket ws, byte[] buffer, CancellationToken cancellationToken)
    {
        var message = new MemoryStream();
        while (true)
        {
            WebSocketReceiveResult r = await ws.ReceiveAsync(buffer, cancellationToken);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                return null;
            }

            message.Write(buffer, 0, r.Count);
            if (r.EndOfMessage)
            {
                return message.ToArray();
            }
        }
    }

    /// <summary>
    /// Ends an exec as the kubelet does: its Status on the error channel (3), then the close frame.
    /// The request ends without waiting for the client's answer (CloseAsync kept it open as long as
    /// the client kept its socket, and a stopping server waited its whole shutdown timeout for it).
    /// </summary>
    private static async Task EndExec(WebSocket ws, string status, CancellationToken cancellationToken)
    {
        // The close frame waits behind the output like any other: a client that reads slowly gets it
        // when it has read the rest (a real kubelet's stream has no deadline of its own either); the
        // request's abort (the client gone, the server stopping) ends the wait.
        await ws.SendAsync(ChannelFrame(3, Encoding.UTF8.GetBytes(status)), WebSocketMessageType.Binary, true, cancellationToken);
        await ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
    }

    /// <summary>The Status of an exec that could not start (InternalError, code 500, no exit code), as the kubelet writes it.</summary>
    private static JsonObject InternalError(string error) => new()
    {
        ["metadata"] = new JsonObject(),
        ["status"] = "Failure",
        ["message"] = "Internal error occurred: " + error,
        ["reason"] = "InternalError",
        ["details"] = new JsonObject { ["causes"] = new JsonArray(new JsonObject { ["message"] = error }) },
        ["code"] = 500,
    };

    /// <summary>The Status an exec ends with on its error channel, as the kubelet writes it: Success, or the exit code as a cause.</summary>
    private static JsonObject ExitStatus(int exitCode, string[] command) => exitCode == 0
        ? new JsonObject { ["metadata"] = new JsonObject(), ["status"] = "Success" }
        : new JsonObject
        {
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = $"command terminated with non-zero exit code: error executing command [{string.Join(' ', command)}], exit code {exitCode}",
            ["reason"] = "NonZeroExitCode",
            ["details"] = new JsonObject { ["causes"] = new JsonArray(new JsonObject { ["reason"] = "ExitCode", ["message"] = exitCode.ToString(CultureInfo.InvariantCulture) }) },
        };
}
