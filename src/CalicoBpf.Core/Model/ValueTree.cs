using System.Collections.ObjectModel;

namespace CalicoBpf;

/// <summary>
/// A JSON object as plain values (a ValueTree for an object, a ValueList for an array, string, long,
/// double, bool, null): ConvertTo-Json writes it back as the JSON it came from,
/// <c>$config.Resource.spec.bpfLogLevel</c> reads a field, and an Export-Csv cell holds the compact
/// JSON (ToString).
/// </summary>
public sealed class ValueTree : ReadOnlyDictionary<string, object?>
{
    private readonly string _json;

    private ValueTree(IDictionary<string, object?> items, string json)
        : base(items)
    {
        _json = json;
    }

    public static ValueTree From(JsonObject node)
    {
        var items = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach ((string key, JsonNode? value) in node)
        {
            items[key] = Plain(value);
        }

        return new ValueTree(items, node.ToJsonString());
    }

    public override string ToString() => _json;

    private static object? Plain(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => From(o),
        JsonArray a => new ValueList<object?>(a.Select(Plain).ToList()),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => v.TryGetValue(out long l) ? l : v.GetValue<double>(),
            _ => null,
        },
        _ => null,
    };
}
