using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>Watch: the store's events for a kind, filtered by the request's selectors, streamed as JSON lines.</summary>
public sealed partial class ApiServer
{
    /// <summary>A watch stream: one JSON event per line, until timeoutSeconds or the client leaves.</summary>
    private async Task Watch(HttpContext ctx, Target t)
    {
        int? from = int.TryParse(ctx.Request.Query["resourceVersion"], out int rv) ? rv : null;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        if (int.TryParse(ctx.Request.Query["timeoutSeconds"], out int seconds) && seconds > 0)
        {
            timeout.CancelAfter(TimeSpan.FromSeconds(seconds));
        }

        IAsyncEnumerator<(string Type, JsonObject Object)> events = Store.Watch(t.Kind, t.Namespace, from, timeout.Token).GetAsyncEnumerator(timeout.Token);
        try
        {
            // The first MoveNext registers the watcher and may fail (410 Expired) before any byte is sent.
            bool any;
            try
            {
                any = await events.MoveNextAsync();
            }
            catch (OperationCanceledException)
            {
                any = false;
            }

            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/json";
            await ctx.Response.StartAsync(ctx.RequestAborted);
            try
            {
                while (any)
                {
                    (string type, JsonObject o) = events.Current;
                    if (Selectors.Filter(ctx.Request.Query, new[] { o }).Any())
                    {
                        await ctx.Response.WriteAsync(new JsonObject { ["type"] = type, ["object"] = o }.ToJsonString() + "\n", ctx.RequestAborted);
                        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                    }

                    any = await events.MoveNextAsync();
                }
            }
            catch (OperationCanceledException)
            {
            }
        }
        finally
        {
            await events.DisposeAsync();
        }
    }
}
