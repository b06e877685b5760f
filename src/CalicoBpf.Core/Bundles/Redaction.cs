namespace CalicoBpf.Bundles;

/// <summary>
/// What never goes into a bundle: Secrets (never asked for), values of environment variables whose
/// names say they are secret (in calico-node's environment and in every pod template the cluster
/// answers with), kubectl's last-applied annotation (a copy of whatever was applied, secrets
/// included), managed fields, and the client's credentials (the bundle keeps only the context's
/// name). Lines of logs that carry a bearer token or a password keep the text before it.
/// </summary>
public static class Redaction
{
    /// <summary>What a removed value is replaced with.</summary>
    public const string Redacted = "(redacted by CalicoBpf)";

    private static readonly Regex SecretName = new(@"PASSW(OR)?D|SECRET|TOKEN|CREDENTIAL|PRIVATE|(^|_)(API_?)?KEY($|_)|AUTH", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);

    private static readonly Regex SecretInText = new(@"((?:authorization|password|passwd|token|secret|api[_-]?key)""?\s*[:=]\s*""?(?:bearer\s+|basic\s+)?|bearer\s+)[^\s"",}]+", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Compiled);

    /// <summary>Whether a variable or field of this name holds a secret.</summary>
    public static bool IsSecretName(string name) => SecretName.IsMatch(name);

    /// <summary>Resources the bundle never holds, whatever asks.</summary>
    public static bool IsSecretResource(Cluster.ResourceRef resource) => resource.Plural is "secrets" or "serviceaccounts" or "tokenreviews";

    /// <summary>An environment value as kept: null stays null, a secret is replaced.</summary>
    public static string? EnvironmentValue(string name, string? value) => value is not null && IsSecretName(name) ? Redacted : value;

    /// <summary>A log or trace line as kept.</summary>
    public static string Line(string line) => SecretInText.Replace(line, m => m.Groups[1].Value + Redacted);

    /// <summary>A copy of a resource (or list item) as kept: no last-applied annotation, no managed fields, no secret environment values anywhere in it.</summary>
    public static JsonObject? Resource(JsonObject? resource)
    {
        if (resource is null)
        {
            return null;
        }

        var copy = (JsonObject)resource.DeepClone();
        if (copy["metadata"] is JsonObject meta)
        {
            meta.Remove("managedFields");
            if (meta["annotations"] is JsonObject annotations)
            {
                annotations.Remove("kubectl.kubernetes.io/last-applied-configuration");
            }
        }

        Scrub(copy);
        return copy;
    }

    /// <summary>Every "env" list in the tree: values of secret-named variables go.</summary>
    private static void Scrub(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                if (o["env"] is JsonArray env)
                {
                    foreach (JsonObject v in env.OfType<JsonObject>())
                    {
                        if (v["name"]?.GetValueKind() == JsonValueKind.String && IsSecretName(v["name"]!.GetValue<string>()) && v.ContainsKey("value"))
                        {
                            v["value"] = Redacted;
                        }
                    }
                }

                foreach (KeyValuePair<string, JsonNode?> p in o.ToList())
                {
                    Scrub(p.Value);
                }

                break;
            case JsonArray a:
                foreach (JsonNode? item in a)
                {
                    Scrub(item);
                }

                break;
        }
    }
}
