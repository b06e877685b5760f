using System.Globalization;
using System.Text.Json.Nodes;

namespace CalicoBpf.TestCluster;

/// <summary>
/// Server-side printing (Accept: application/json;as=Table;g=meta.k8s.io;v=v1), as kubectl get asks
/// for it: the columns the real API server prints for the built-in kinds, the CRD's
/// additionalPrinterColumns (or Name and Age) for custom resources.
/// </summary>
public static class Tables
{
    private sealed record Column(string Name, string Type, Func<JsonObject, JsonNode?> Cell, int Priority = 0, string Format = "");

    public static bool Wanted(string accept) => accept.Contains("as=Table", StringComparison.Ordinal);

    public static JsonObject Build(ResourceKind kind, IEnumerable<JsonObject> items, int resourceVersion, string includeObject)
    {
        List<Column> columns = ColumnsOf(kind);
        return new JsonObject
        {
            ["kind"] = "Table",
            ["apiVersion"] = "meta.k8s.io/v1",
            ["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion.ToString(CultureInfo.InvariantCulture) },
            ["columnDefinitions"] = new JsonArray(columns.Select(c => (JsonNode)new JsonObject
            {
                ["name"] = c.Name,
                ["type"] = c.Type,
                ["format"] = c.Format,
                ["description"] = c.Name,
                ["priority"] = c.Priority,
            }).ToArray()),
            ["rows"] = new JsonArray(items.Select(o => (JsonNode)new JsonObject
            {
                ["cells"] = new JsonArray(columns.Select(c => c.Cell(o)?.DeepClone()).ToArray()),
                ["object"] = includeObject switch
                {
                    "None" => null,
                    "Object" => o.DeepClone(),
                    _ => new JsonObject { ["kind"] = "PartialObjectMetadata", ["apiVersion"] = "meta.k8s.io/v1", ["metadata"] = o["metadata"]!.DeepClone() },
                },
            }).ToArray()),
        };
    }

    private static List<Column> ColumnsOf(ResourceKind kind)
    {
        var name = new Column("Name", "string", o => o["metadata"]!["name"]!.GetValue<string>(), Format: "name");
        var age = new Column("Age", "string", o => Age(o["metadata"]?["creationTimestamp"]?.GetValue<string>()));
        return (kind.Group, kind.Plural) switch
        {
            ("", "pods") => new()
            {
                name,
                new("Ready", "string", o => $"{Count(o["status"]?["containerStatuses"], c => c?["ready"]?.GetValue<bool>() == true)}/{Count(o["spec"]?["containers"], _ => true)}"),
                new("Status", "string", o => o["status"]?["phase"]?.GetValue<string>()),
                new("Restarts", "string", o => "0"),
                age,
                new("IP", "string", o => o["status"]?["podIP"]?.GetValue<string>(), 1),
                new("Node", "string", o => o["spec"]?["nodeName"]?.GetValue<string>(), 1),
            },
            ("", "nodes") => new()
            {
                name,
                new("Status", "string", o => o["status"]?["conditions"] is JsonArray c && c.Any(x => x?["type"]?.GetValue<string>() == "Ready" && x["status"]?.GetValue<string>() == "True") ? "Ready" : "NotReady"),
                new("Roles", "string", o => "<none>"),
                age,
                new("Version", "string", o => o["status"]?["nodeInfo"]?["kubeletVersion"]?.GetValue<string>()),
                new("Kernel-Version", "string", o => o["status"]?["nodeInfo"]?["kernelVersion"]?.GetValue<string>(), 1),
            },
            ("", "namespaces") => new() { name, new("Status", "string", o => o["status"]?["phase"]?.GetValue<string>()), age },
            ("", "services") => new()
            {
                name,
                new("Type", "string", o => o["spec"]?["type"]?.GetValue<string>()),
                new("Cluster-IP", "string", o => o["spec"]?["clusterIP"]?.GetValue<string>()),
                new("External-IP", "string", o => o["spec"]?["externalIPs"] is JsonArray e && e.Count > 0 ? string.Join(',', e.Select(x => x!.GetValue<string>())) : "<none>"),
                new("Port(s)", "string", o => string.Join(',', (o["spec"]?["ports"] as JsonArray ?? new JsonArray()).Select(p => $"{p!["port"]}/{p["protocol"]}"))),
                age,
            },
            ("", "configmaps") => new() { name, new("Data", "integer", o => (o["data"] as JsonObject)?.Count ?? 0), age },
            ("apps", "daemonsets") => new()
            {
                name,
                new("Desired", "integer", o => o["status"]?["desiredNumberScheduled"]?.DeepClone()),
                new("Current", "integer", o => o["status"]?["currentNumberScheduled"]?.DeepClone()),
                new("Ready", "integer", o => o["status"]?["numberReady"]?.DeepClone()),
                new("Up-to-date", "integer", o => o["status"]?["updatedNumberScheduled"]?.DeepClone()),
                new("Available", "integer", o => o["status"]?["numberAvailable"]?.DeepClone()),
                new("Node Selector", "string", o => o["spec"]?["template"]?["spec"]?["nodeSelector"] is JsonObject s && s.Count > 0 ? string.Join(',', s.Select(kv => $"{kv.Key}={kv.Value}")) : "<none>"),
                age,
            },
            ("discovery.k8s.io", "endpointslices") => new()
            {
                name,
                new("AddressType", "string", o => o["addressType"]?.GetValue<string>()),
                new("Ports", "string", o => string.Join(',', (o["ports"] as JsonArray ?? new JsonArray()).Select(p => p!["port"]?.ToJsonString()))),
                new("Endpoints", "string", o => string.Join(',', (o["endpoints"] as JsonArray ?? new JsonArray()).SelectMany(e => e!["addresses"]!.AsArray().Select(a => a!.GetValue<string>())))),
                age,
            },
            _ => CustomColumns(kind, name, age),
        };
    }

    private static List<Column> CustomColumns(ResourceKind kind, Column name, Column age)
    {
        var columns = new List<Column> { name };
        JsonArray? printer = kind.Definition?["spec"]?["versions"]?.AsArray()
            .FirstOrDefault(v => v?["name"]?.GetValue<string>() == kind.Version)?["additionalPrinterColumns"] as JsonArray;
        if (printer is null)
        {
            columns.Add(new Column("Age", "date", o => Age(o["metadata"]?["creationTimestamp"]?.GetValue<string>())));
            return columns;
        }

        foreach (JsonObject c in printer.OfType<JsonObject>())
        {
            string path = c["jsonPath"]!.GetValue<string>().TrimStart('.');
            string type = c["type"]?.GetValue<string>() ?? "string";
            columns.Add(new Column(c["name"]!.GetValue<string>(), type, o =>
            {
                JsonNode? node = o;
                foreach (string part in path.Split('.'))
                {
                    node = node?[part];
                }

                // The API server prints date columns as ages, as kubectl shows them.
                return type == "date" && node is JsonValue v ? Age(v.GetValue<string>()) : node?.DeepClone();
            }, c["priority"]?.GetValue<int>() ?? 0));
        }

        return columns;
    }

    private static int Count(JsonNode? array, Func<JsonNode?, bool> predicate) => array is JsonArray a ? a.Count(predicate) : 0;

    /// <summary>Age the way kubectl prints it (the API server's HumanDuration): 45s, 12m, 5h, 3d8h, 25d.</summary>
    public static string Age(string? timestamp)
    {
        if (!DateTime.TryParse(timestamp, CultureInfo.InvariantCulture, DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out DateTime created))
        {
            return "<unknown>";
        }

        TimeSpan d = DateTime.UtcNow - created;
        return d.TotalSeconds < 60 ? $"{Math.Max(0, (int)d.TotalSeconds)}s"
            : d.TotalMinutes < 60 ? $"{(int)d.TotalMinutes}m"
            : d.TotalHours < 8 ? $"{(int)d.TotalHours}h{(d.Minutes > 0 ? d.Minutes + "m" : string.Empty)}"
            : d.TotalHours < 48 ? $"{(int)d.TotalHours}h"
            : d.TotalDays < 8 ? $"{(int)d.TotalDays}d{(d.Hours > 0 ? d.Hours + "h" : string.Empty)}"
            : $"{(int)d.TotalDays}d";
    }
}
