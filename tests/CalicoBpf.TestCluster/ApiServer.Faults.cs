using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>
/// The scenario's fault knobs that answer instead of the server: <c>apiFaults</c> (a status, a
/// Retry-After, a delay for matching paths and tokens) and a node's canned exec answer
/// (<c>execExitCode</c> with <c>execStdout</c> and <c>execStderr</c>). The knobs inside a running exec
/// (<c>execDelayMilliseconds</c>, <c>execDiesAfterBytes</c>) and of the node's image
/// (<c>imageWithout</c>, <c>bpftoolStallSeconds</c>) act where they happen.
/// </summary>
public sealed partial class ApiServer
{
    /// <summary>Applies the first matching API fault that has a turn left: its delay, then its status; true when that answered the request.</summary>
    private async Task<bool> AnsweredByFault(HttpContext ctx, string path)
    {
        string? token = BearerToken(ctx);
        ClusterScenario.ApiFault? fault = _scenario.ApiFaults.FirstOrDefault(f =>
            path.StartsWith(f.Path, StringComparison.Ordinal) && (f.Token is null || f.Token == token) && f.TakeOne());
        if (fault is { DelayMilliseconds: > 0 })
        {
            // A slow answer: the client may give up first (its request is then aborted here too).
            await Task.Delay(fault.DelayMilliseconds, ctx.RequestAborted);
        }

        if (fault is not { Status: > 0 })
        {
            return false;
        }

        string reason = fault.Status switch { 401 => "Unauthorized", 403 => "Forbidden", 404 => "NotFound", 429 => "TooManyRequests", 503 => "ServiceUnavailable", _ => "InternalError" };
        if (fault.RetryAfterSeconds is int after)
        {
            ctx.Response.Headers.RetryAfter = after.ToString(CultureInfo.InvariantCulture);
        }

        await Write(ctx, fault.Status, ApiObjects.Status(fault.Status, reason, fault.Message));
        return true;
    }

    /// <summary>
    /// A node whose scenario gives <c>execExitCode</c>: every command "runs" and ends as configured (a
    /// tool missing, garbage on stdout, a failure) instead of running for real. True when it answered.
    /// </summary>
    private static async Task<bool> AnsweredByExecFault(WebSocket ws, SimulatedNode node, string[] command, CancellationToken cancellationToken)
    {
        if (node.Spec.ExecExitCode is not int exitCode)
        {
            return false;
        }

        foreach ((byte channel, string text) in new[] { ((byte)1, node.Spec.ExecStdout), ((byte)2, node.Spec.ExecStderr) })
        {
            if (text.Length > 0)
            {
                await ws.SendAsync(ChannelFrame(channel, Encoding.UTF8.GetBytes(text)), WebSocketMessageType.Binary, true, cancellationToken);
            }
        }

        await EndExec(ws, ExitStatus(exitCode, command).ToJsonString(), cancellationToken);
        return true;
    }
}
