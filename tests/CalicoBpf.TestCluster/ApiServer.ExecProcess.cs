using System.Diagnostics;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>
/// An exec's command run for real in the node's calico-node container (its namespaces and root, the
/// image's environment), with stdin, stdout and stderr over the stream, and what a kubelet does when
/// the client goes away: nothing is killed.
/// </summary>
public sealed partial class ApiServer
{
    private async Task RunInContainer(HttpContext ctx, WebSocket ws, SimulatedNode node, string[] command, string protocol)
    {
        var psi = new ProcessStartInfo("nsenter") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        IReadOnlyList<string> argv = node.Wrap(command);
        psi.FileName = argv[0];
        foreach (string a in argv.Skip(1))
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Clear();
        foreach ((string key, string value) in node.Environment)
        {
            psi.Environment[key] = value;
        }

        Process process = Process.Start(psi)!;
        bool stdin = StdinAsked(ctx);
        if (!stdin)
        {
            process.StandardInput.Close();
        }

        using var abort = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        var sendLock = new SemaphoreSlim(1, 1);

        async Task Send(byte channel, ReadOnlyMemory<byte> data)
        {
            byte[] frame = ChannelFrame(channel, data.Span);
            await sendLock.WaitAsync(abort.Token);
            try
            {
                await ws.SendAsync(frame, WebSocketMessageType.Binary, true, abort.Token);
            }
            finally
            {
                sendLock.Release();
            }
        }

        long sent = 0;
        // Copies the command's output to the client. When the client has gone, the next output the
        // command writes is not taken: the pipe is closed, and the command's following write fails (EPIPE),
        // as it does when a kubelet's exec stream is gone.
        async Task Pump(Stream source, byte channel)
        {
            byte[] buffer = new byte[32 * 1024];
            try
            {
                int n;
                while ((n = await source.ReadAsync(buffer, CancellationToken.None)) > 0 && !abort.IsCancellationRequested)
                {
                    if (channel == 1 && node.Spec.ExecDiesAfterBytes is long limit && sent + n > limit)
                    {
                        // Fault knob: the connection drops mid-stream, as when the kubelet or a proxy dies.
                        await Send(channel, buffer.AsMemory(0, (int)Math.Max(0, limit - sent)));
                        ws.Abort();
                        abort.Cancel();
                        return;
                    }

                    sent += channel == 1 ? n : 0;
                    await Send(channel, buffer.AsMemory(0, n));
                }
            }
            catch (Exception) when (abort.IsCancellationRequested || ws.State != WebSocketState.Open)
            {
            }
            finally
            {
                source.Dispose();
            }
        }

        // The client going away (Ctrl+C, a timeout) does not kill the command, as a kubelet does not:
        // its stdin ends (containerd closes an exec's stdin when the stream's does) and its output is
        // no longer read. A command that blocks without writing keeps running.
        bool stdinGone = false;
        int stdinClosed = 0;
        void EndStdin()
        {
            stdinGone = true;
            if (Interlocked.Exchange(ref stdinClosed, 1) == 0)
            {
                try
                {
                    process.StandardInput.Close();
                }
                catch (IOException)
                {
                }
            }
        }

        Task receiving = Task.Run(async () =>
        {
            byte[] b = new byte[1024];
            try
            {
                while (ws.State == WebSocketState.Open && await ReceiveMessage(ws, b, abort.Token) is byte[] frame)
                {
                    if (frame.Length == 0 || !stdin)
                    {
                        continue;
                    }

                    if (frame[0] == 0)
                    {
                        // stdin data; a command that ended (or closed its stdin) before taking it all is no
                        // failure of the session: the rest is dropped and it ends with its status, as a kubelet's does.
                        if (!stdinGone)
                        {
                            try
                            {
                                await process.StandardInput.BaseStream.WriteAsync(frame.AsMemory(1), abort.Token);
                                await process.StandardInput.BaseStream.FlushAsync(abort.Token);
                            }
                            catch (IOException)
                            {
                                stdinGone = true;
                            }
                        }
                    }
                    else if (frame[0] == 255 && protocol == "v5.channel.k8s.io" && frame.Length > 1 && frame[1] == 0)
                    {
                        // v5's close signal: the client has no more stdin.
                        EndStdin();
                    }
                }
            }
            catch (Exception)
            {
                // The client went away (or the request was aborted first, which ended this receive).
            }

            if (!process.HasExited)
            {
                try
                {
                    abort.Cancel();
                }
                catch (ObjectDisposedException)
                {
                }

                EndStdin();
            }
        });

        Task output = Task.WhenAll(Pump(process.StandardOutput.BaseStream, 1), Pump(process.StandardError.BaseStream, 2));
        bool detached = false;
        try
        {
            await Task.WhenAny(output, Task.Delay(Timeout.Infinite, abort.Token));
            abort.Token.ThrowIfCancellationRequested();
            await process.WaitForExitAsync(abort.Token);
            // Both pumps are done: nothing else sends now.
            await EndExec(ws, ExitStatus(process.ExitCode, command).ToJsonString(), abort.Token);
        }
        catch (Exception) when (abort.IsCancellationRequested || ws.State != WebSocketState.Open)
        {
            // The client left; the command is on its own, and is let go in the background: the request
            // does not wait for it.
            detached = true;
            EndStdin();
            _ = Task.Run(async () =>
            {
                await output;
                await process.WaitForExitAsync();
                process.Dispose();
            });
        }
        finally
        {
            if (!detached)
            {
                process.Dispose();
            }
        }
    }
}
