namespace CalicoBpf.Cluster;

/// <summary>One field that a schema rejects, shaped as a Kubernetes StatusCause.</summary>
/// <param name="Field">The JSON path, "spec.bpfLogLevel".</param>
/// <param name="Reason">FieldValueNotSupported, FieldValueInvalid, FieldValueTypeInvalid, FieldValueRequired, FieldValueTooLong.</param>
/// <param name="Message">"Unsupported value: \"Verbose\": supported values: \"\", \"Info\", \"Debug\"".</param>
public sealed record FieldError(string Field, string Reason, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}

/// <summary>
/// A CustomResourceDefinition's structural OpenAPI v3 schema (openAPIV3Schema), applied the way the
/// Kubernetes API server applies it: type, enum, pattern, minimum/maximum, min/maxLength,
/// min/maxItems, required, int-or-string; unknown fields pruned unless
/// x-kubernetes-preserve-unknown-fields. Messages are the API server's. CEL rules
/// (x-kubernetes-validations) are not evaluated.
/// </summary>
public sealed class StructuralSchema
{
    private static readonly Dictionary<string, Regex> Patterns = new(StringComparer.Ordinal);
    private readonly JsonObject _root;

    public StructuralSchema(JsonObject openApiV3Schema) => _root = openApiV3Schema;

    /// <summary>The schema of a field by its dotted path ("spec.bpfLogLevel"), or null when the CRD has no such field.</summary>
    public JsonObject? Field(string path)
    {
        JsonObject? node = _root;
        foreach (string part in path.Split('.'))
        {
            node = node?["properties"]?[part] as JsonObject;
        }

        return node;
    }

    /// <summary>Every error in the object, in document order (an empty list when the object is valid).</summary>
    public IReadOnlyList<FieldError> Validate(JsonNode? value)
    {
        var errors = new List<FieldError>();
        Check(_root, value, string.Empty, errors);
        return errors;
    }

    /// <summary>Drops fields the schema does not know, as the API server does; returns their paths.</summary>
    public IReadOnlyList<string> Prune(JsonObject value)
    {
        var pruned = new List<string>();
        Prune(_root, value, string.Empty, pruned, root: true);
        return pruned;
    }

    private static void Prune(JsonObject schema, JsonNode? value, string path, List<string> pruned, bool root = false)
    {
        if (Flag(schema, "x-kubernetes-preserve-unknown-fields"))
        {
            return;
        }

        if (value is JsonObject obj)
        {
            JsonObject? properties = schema["properties"] as JsonObject;
            JsonObject? additional = schema["additionalProperties"] as JsonObject;
            foreach (string key in obj.Select(p => p.Key).ToList())
            {
                if (root && key is "apiVersion" or "kind" or "metadata")
                {
                    continue;
                }

                if (properties?[key] is JsonObject child)
                {
                    Prune(child, obj[key], Join(path, key), pruned);
                }
                else if (additional is not null)
                {
                    Prune(additional, obj[key], Join(path, key), pruned);
                }
                else if (properties is not null || schema["type"]?.GetValue<string>() == "object")
                {
                    obj.Remove(key);
                    pruned.Add(Join(path, key));
                }
            }
        }
        else if (value is JsonArray array && schema["items"] is JsonObject items)
        {
            for (int i = 0; i < array.Count; i++)
            {
                Prune(items, array[i], $"{path}[{i}]", pruned);
            }
        }
    }

    private static void Check(JsonObject schema, JsonNode? value, string path, List<FieldError> errors)
    {
        if (value is null)
        {
            // null is "unset" for optional fields; nullable: true makes it explicit.
            return;
        }

        bool intOrString = Flag(schema, "x-kubernetes-int-or-string");
        string? type = schema["type"]?.GetValue<string>();
        string? actual = TypeOf(value);
        if (intOrString)
        {
            if (actual is not ("integer" or "string"))
            {
                errors.Add(new FieldError(path, "FieldValueTypeInvalid", $"Invalid value: \"{actual}\": {path} in body must be of type integer,string: \"{actual}\""));
                return;
            }
        }
        else if (type is not null && !(type == actual || (type == "number" && actual == "integer")))
        {
            errors.Add(new FieldError(path, "FieldValueTypeInvalid", $"Invalid value: \"{actual}\": {path} in body must be of type {type}: \"{actual}\""));
            return;
        }

        if (schema["enum"] is JsonArray allowed && !allowed.Any(a => JsonNode.DeepEquals(a, value)))
        {
            string list = string.Join(", ", allowed.Select(a => a?.ToJsonString() ?? "null"));
            errors.Add(new FieldError(path, "FieldValueNotSupported", $"Unsupported value: {value.ToJsonString()}: supported values: {list}"));
        }

        switch (value)
        {
            case JsonObject obj:
                CheckObject(schema, obj, path, errors);
                break;
            case JsonArray array:
                CheckArray(schema, array, path, errors);
                break;
            case JsonValue scalar when actual == "string":
                CheckString(schema, scalar.GetValue<string>(), path, errors);
                break;
            case JsonValue scalar when actual is "integer" or "number":
                CheckNumber(schema, scalar, path, errors);
                break;
        }
    }

    private static void CheckObject(JsonObject schema, JsonObject obj, string path, List<FieldError> errors)
    {
        if (schema["required"] is JsonArray required)
        {
            foreach (string name in required.Select(r => r!.GetValue<string>()))
            {
                if (!obj.ContainsKey(name))
                {
                    errors.Add(new FieldError(Join(path, name), "FieldValueRequired", "Required value"));
                }
            }
        }

        JsonObject? properties = schema["properties"] as JsonObject;
        JsonObject? additional = schema["additionalProperties"] as JsonObject;
        foreach ((string key, JsonNode? child) in obj)
        {
            if (path.Length == 0 && key == "metadata")
            {
                continue;
            }

            if (properties?[key] is JsonObject childSchema)
            {
                Check(childSchema, child, Join(path, key), errors);
            }
            else if (additional is not null)
            {
                Check(additional, child, Join(path, key), errors);
            }
        }
    }

    private static void CheckArray(JsonObject schema, JsonArray array, string path, List<FieldError> errors)
    {
        if (Number(schema, "maxItems") is double maxItems && array.Count > maxItems)
        {
            errors.Add(new FieldError(path, "FieldValueTooMany", $"Too many: {array.Count}: must have at most {maxItems} items"));
        }

        if (Number(schema, "minItems") is double minItems && array.Count < minItems)
        {
            errors.Add(new FieldError(path, "FieldValueInvalid", $"Invalid value: {array.Count}: {path} in body should have at least {minItems} items"));
        }

        if (schema["items"] is JsonObject items)
        {
            for (int i = 0; i < array.Count; i++)
            {
                Check(items, array[i], $"{path}[{i}]", errors);
            }
        }
    }

    private static void CheckString(JsonObject schema, string text, string path, List<FieldError> errors)
    {
        string quoted = JsonSerializer.Serialize(text);
        if (Number(schema, "maxLength") is double maxLength && Encoding.UTF8.GetByteCount(text) > maxLength)
        {
            errors.Add(new FieldError(path, "FieldValueTooLong", $"Too long: may not be more than {maxLength} bytes"));
        }

        if (Number(schema, "minLength") is double minLength && text.Length < minLength)
        {
            errors.Add(new FieldError(path, "FieldValueInvalid", $"Invalid value: {quoted}: {path} in body should be at least {minLength} chars long"));
        }

        if (schema["pattern"]?.GetValue<string>() is string pattern && !PatternOf(pattern).IsMatch(text))
        {
            errors.Add(new FieldError(path, "FieldValueInvalid", $"Invalid value: {quoted}: {path} in body should match '{pattern}'"));
        }
    }

    private static void CheckNumber(JsonObject schema, JsonValue scalar, string path, List<FieldError> errors)
    {
        string shown = scalar.ToJsonString();
        double number = double.Parse(shown, CultureInfo.InvariantCulture);
        if (Number(schema, "maximum") is double maximum && number > maximum)
        {
            errors.Add(new FieldError(path, "FieldValueInvalid", $"Invalid value: {shown}: {path} in body should be less than or equal to {maximum.ToString(CultureInfo.InvariantCulture)}"));
        }

        if (Number(schema, "minimum") is double minimum && number < minimum)
        {
            errors.Add(new FieldError(path, "FieldValueInvalid", $"Invalid value: {shown}: {path} in body should be greater than or equal to {minimum.ToString(CultureInfo.InvariantCulture)}"));
        }
    }

    /// <summary>The OpenAPI type of a JSON value: integer for numbers without a fraction.</summary>
    private static string? TypeOf(JsonNode value) => value.GetValueKind() switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Number => value.ToJsonString().IndexOfAny(new[] { '.', 'e', 'E' }) < 0 ? "integer" : "number",
        _ => null,
    };

    private static Regex PatternOf(string pattern)
    {
        lock (Patterns)
        {
            if (!Patterns.TryGetValue(pattern, out Regex? regex))
            {
                // Kubernetes uses Go's RE2; the CRDs' patterns are in the subset .NET reads alike.
                regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
                Patterns[pattern] = regex;
            }

            return regex;
        }
    }

    private static bool Flag(JsonObject schema, string name) => schema[name] is JsonValue v && v.GetValueKind() == JsonValueKind.True;

    private static double? Number(JsonObject schema, string name) => schema[name] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? double.Parse(v.ToJsonString(), CultureInfo.InvariantCulture) : null;

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;
}
