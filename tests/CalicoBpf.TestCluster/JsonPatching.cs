using System.Text.Json.Nodes;

namespace CalicoBpf.TestCluster;

/// <summary>JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as the API server applies them.</summary>
public static class JsonPatching
{
    /// <summary>RFC 7386: objects merge key by key, null removes a key, anything else replaces.</summary>
    public static JsonNode? Merge(JsonNode? target, JsonNode? patch)
    {
        if (patch is not JsonObject patchObject)
        {
            return patch?.DeepClone();
        }

        JsonObject result = target is JsonObject t ? (JsonObject)t.DeepClone() : new JsonObject();
        foreach ((string key, JsonNode? value) in patchObject)
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                JsonNode? merged = Merge(result[key], value);
                result.Remove(key);
                result[key] = merged;
            }
        }

        return result;
    }

    /// <summary>RFC 6902: add, remove, replace, move, copy, test, in order; any failure fails the whole patch.</summary>
    public static JsonNode Apply(JsonNode document, JsonArray operations)
    {
        JsonNode doc = document.DeepClone();
        foreach (JsonNode? item in operations)
        {
            JsonObject op = item as JsonObject ?? throw new FormatException("each JSON patch operation is an object");
            string name = op["op"]?.GetValue<string>() ?? throw new FormatException("a JSON patch operation lacks \"op\"");
            string path = op["path"]?.GetValue<string>() ?? throw new FormatException($"the {name} operation lacks \"path\"");
            switch (name)
            {
                case "add":
                    Add(ref doc, path, Value(op));
                    break;
                case "remove":
                    Remove(doc, path);
                    break;
                case "replace":
                    Remove(doc, path);
                    Add(ref doc, path, Value(op));
                    break;
                case "move":
                {
                    string from = op["from"]?.GetValue<string>() ?? throw new FormatException("the move operation lacks \"from\"");
                    JsonNode? moved = Get(doc, from)?.DeepClone();
                    Remove(doc, from);
                    Add(ref doc, path, moved);
                    break;
                }

                case "copy":
                {
                    string from = op["from"]?.GetValue<string>() ?? throw new FormatException("the copy operation lacks \"from\"");
                    Add(ref doc, path, Get(doc, from)?.DeepClone());
                    break;
                }

                case "test":
                    if (!JsonNode.DeepEquals(Get(doc, path), op["value"]))
                    {
                        throw new FormatException($"testing value {path} failed: the value differs");
                    }

                    break;
                default:
                    throw new FormatException($"unknown JSON patch operation \"{name}\"");
            }
        }

        return doc;
    }

    private static JsonNode? Value(JsonObject op) =>
        op.TryGetPropertyValue("value", out JsonNode? v) ? v?.DeepClone() : throw new FormatException("the operation lacks \"value\"");

    private static string[] Tokens(string pointer)
    {
        if (pointer.Length == 0)
        {
            return Array.Empty<string>();
        }

        if (pointer[0] != '/')
        {
            throw new FormatException($"\"{pointer}\" is not a JSON pointer");
        }

        return pointer[1..].Split('/').Select(t => t.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();
    }

    private static JsonNode? Get(JsonNode doc, string pointer)
    {
        JsonNode? node = doc;
        foreach (string token in Tokens(pointer))
        {
            node = node switch
            {
                JsonObject o when o.ContainsKey(token) => o[token],
                JsonArray a when int.TryParse(token, out int i) && i >= 0 && i < a.Count => a[i],
                _ => throw new FormatException($"doc is missing path: \"{pointer}\""),
            };
        }

        return node;
    }

    private static void Add(ref JsonNode doc, string pointer, JsonNode? value)
    {
        string[] tokens = Tokens(pointer);
        if (tokens.Length == 0)
        {
            doc = value ?? throw new FormatException("cannot replace the document with null");
            return;
        }

        JsonNode? parent = tokens.Length == 1 ? doc : Get(doc, "/" + string.Join('/', tokens[..^1].Select(Escape)));
        string last = tokens[^1];
        switch (parent)
        {
            case JsonObject o:
                o.Remove(last);
                o[last] = value;
                break;
            case JsonArray a when last == "-":
                a.Add(value);
                break;
            case JsonArray a when int.TryParse(last, out int i) && i >= 0 && i <= a.Count:
                a.Insert(i, value);
                break;
            default:
                throw new FormatException($"doc is missing path: \"{pointer}\"");
        }
    }

    private static void Remove(JsonNode doc, string pointer)
    {
        string[] tokens = Tokens(pointer);
        if (tokens.Length == 0)
        {
            throw new FormatException("cannot remove the whole document");
        }

        JsonNode? parent = tokens.Length == 1 ? doc : Get(doc, "/" + string.Join('/', tokens[..^1].Select(Escape)));
        string last = tokens[^1];
        bool removed = parent switch
        {
            JsonObject o => o.Remove(last),
            JsonArray a when int.TryParse(last, out int i) && i >= 0 && i < a.Count => RemoveAt(a, i),
            _ => false,
        };
        if (!removed)
        {
            throw new FormatException($"unable to remove nonexistent key: {last}: missing value");
        }
    }

    private static bool RemoveAt(JsonArray a, int i)
    {
        a.RemoveAt(i);
        return true;
    }

    private static string Escape(string token) => token.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
}
