using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Extensions;

namespace CalicoBpf.TestCluster;

/// <summary>
/// What tests read that no real API server has, under /debug/calicobpf/: the writes stored (how a
/// test sees that -WhatIf sent none), the exec sessions open and the longest exec URL served, the
/// requests by method and path, and what runs in a node's calico-node container.
/// </summary>
public sealed partial class ApiServer
{
    /// <summary>Exec sessions open now (tests check that a stopped fan-out leaves none).</summary>
    private int _activeExecs;
    private int _longestExecTarget;

    /// <summary>Requests served, by method and path ("GET /api/v1/services"): tests count list calls.</summary>
    public Dictionary<string, int> RequestCounts { get; } = new();

    /// <summary>
    /// The command lines running in a node's calico-node container now, its PID 1 aside: what an exec
    /// left behind. A node that is not simulated here is a 404 <see cref="ApiError"/>.
    /// </summary>
    public IReadOnlyList<string> Processes(string node) => _nodes.TryGetValue(node, out SimulatedNode? sn) ? sn.Processes() : throw NotFoundPath();

    /// <summary>Counts the request; for an exec, how long its URL was (path and query, as sent): tests check that bulk work stays small.</summary>
    private void Count(HttpContext ctx, string path)
    {
        lock (RequestCounts)
        {
            string key = ctx.Request.Method + " " + ctx.Request.Path.Value;
            RequestCounts[key] = RequestCounts.GetValueOrDefault(key) + 1;
        }

        if (path.EndsWith("/exec", StringComparison.Ordinal))
        {
            int length = ctx.Request.GetEncodedPathAndQuery().Length;
            for (int seen = Volatile.Read(ref _longestExecTarget); length > seen; seen = Volatile.Read(ref _longestExecTarget))
            {
                Interlocked.CompareExchange(ref _longestExecTarget, length, seen);
            }
        }
    }

    /// <summary>The debug document a path names; null for a path that is not one.</summary>
    private JsonNode? Debug(string[] seg) => seg switch
    {
        ["debug", "calicobpf", "writes"] => new JsonObject { ["writes"] = Store.Writes, ["activeExecs"] = Volatile.Read(ref _activeExecs), ["longestExecTarget"] = Volatile.Read(ref _longestExecTarget) },
        ["debug", "calicobpf", "nodes", var nodeName, "processes"] => new JsonObject { ["processes"] = new JsonArray(Processes(nodeName).Select(p => (JsonNode)p).ToArray()) },
        ["debug", "calicobpf", "requests"] => Requests(),
        _ => null,
    };

    private JsonObject Requests()
    {
        JsonObject counts = new();
        lock (RequestCounts)
        {
            foreach ((string key, int n) in RequestCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                counts[key] = n;
            }
        }

        return counts;
    }
}
