using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>pods/log, and the container parameter it shares with pods/exec.</summary>
public sealed partial class ApiServer
{
    /// <summary>pods/log: the node's calico-node log (other pods log nothing), with container, tailLines, sinceTime and sinceSeconds.</summary>
    private async Task Logs(HttpContext ctx, string ns, string name)
    {
        JsonObject pod = Store.Get(ScenarioObjects.Pods, ns, name);
        CheckContainer(ctx, pod, name);

        string node = pod["spec"]!["nodeName"]!.GetValue<string>();
        bool calico = pod["metadata"]?["labels"]?["k8s-app"]?.GetValue<string>() == "calico-node";
        string[] lines = calico && _nodes.TryGetValue(node, out SimulatedNode? sim) ? sim.Spec.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries) : Array.Empty<string>();
        DateTime? since = DateTime.TryParse(ctx.Request.Query["sinceTime"], CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal, out DateTime t) ? t
            : int.TryParse(ctx.Request.Query["sinceSeconds"], out int seconds) ? DateTime.UtcNow.AddSeconds(-seconds) : null;
        if (since is DateTime from)
        {
            // Felix stamps each line (UTC, no zone); a line without a stamp belongs with the one before it.
            bool keep = false;
            lines = lines.Where(l =>
            {
                if (l.Length >= 23 && DateTime.TryParseExact(l[..23], "yyyy-MM-dd HH:mm:ss.fff", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out DateTime stamp))
                {
                    keep = stamp >= from;
                }

                return keep;
            }).ToArray();
        }

        if (int.TryParse(ctx.Request.Query["tailLines"], out int tail) && tail >= 0)
        {
            lines = lines.TakeLast(tail).ToArray();
        }

        ctx.Response.ContentType = "text/plain";
        await ctx.Response.WriteAsync(lines.Length == 0 ? string.Empty : string.Join('\n', lines) + "\n", ctx.RequestAborted);
    }

    /// <summary>
    /// The container parameter of pods/log and pods/exec, as the API server checks it before any
    /// stream opens: a pod of one container needs none; a name that is not one of its containers is
    /// refused with 400.
    /// </summary>
    private static void CheckContainer(HttpContext ctx, JsonObject pod, string name)
    {
        string[] containers = pod["spec"]?["containers"] is JsonArray cs ? cs.Select(c => c?["name"]?.GetValue<string>() ?? string.Empty).ToArray() : Array.Empty<string>();
        string? container = ctx.Request.Query["container"].FirstOrDefault(c => !string.IsNullOrEmpty(c));
        if (container is null && containers.Length > 1)
        {
            throw new ApiError(400, "BadRequest", $"a container name must be specified for pod {name}, choose one of: [{string.Join(' ', containers)}]");
        }

        if (container is not null && !containers.Contains(container))
        {
            throw new ApiError(400, "BadRequest", $"container {container} is not valid for pod {name}");
        }
    }
}
