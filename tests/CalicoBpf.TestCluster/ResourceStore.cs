using System.Globalization;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using CalicoBpf.Cluster;

namespace CalicoBpf.TestCluster;

/// <summary>
/// One resource type the test cluster serves, as discovery lists it. Types with the same Storage
/// share their objects (FelixConfiguration in projectcalico.org/v3 is the API server's view of the
/// crd.projectcalico.org/v1 objects).
/// </summary>
public sealed record ResourceKind(string Group, string Version, string Plural, string Kind, bool Namespaced, string[] Verbs)
{
    public string GroupVersion => Group.Length == 0 ? Version : Group + "/" + Version;

    /// <summary>"felixconfigurations.crd.projectcalico.org" (or "pods" for the core group), as errors name it.</summary>
    public string Qualified => Group.Length == 0 ? Plural : Plural + "." + Group;

    public string Storage { get; init; } = string.Empty;

    public string StorageKey => Storage.Length == 0 ? Qualified : Storage;

    public string[] ShortNames { get; init; } = Array.Empty<string>();

    public string[] Categories { get; init; } = Array.Empty<string>();

    /// <summary>The CRD's schema (custom resources only): writes are validated and pruned with it.</summary>
    public StructuralSchema? Schema { get; init; }

    /// <summary>A custom resource: no strategic merge patch, updates need a resourceVersion.</summary>
    public bool Custom { get; init; }

    /// <summary>The CRD this kind was loaded from (served under apiextensions.k8s.io).</summary>
    public JsonObject? Definition { get; init; }
}

/// <summary>A failed request, answered with a Status of this code.</summary>
public sealed class ApiError : Exception
{
    public ApiError(int code, string reason, string message, JsonObject? details = null)
        : base(message)
    {
        Code = code;
        Reason = reason;
        Details = details;
    }

    public int Code { get; }

    public string Reason { get; }

    public JsonObject? Details { get; }

    public JsonObject ToStatus()
    {
        JsonObject status = ApiObjects.Status(Code, Reason, Message);
        if (Details is not null)
        {
            status["details"] = Details.DeepClone();
        }

        return status;
    }

    public static ApiError NotFound(ResourceKind kind, string name) =>
        new(404, "NotFound", $"{kind.Qualified} \"{name}\" not found", Detail(kind, name));

    public static ApiError Conflict(ResourceKind kind, string name) =>
        new(409, "Conflict", $"Operation cannot be fulfilled on {kind.Qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", Detail(kind, name));

    public static JsonObject Detail(ResourceKind kind, string name)
    {
        var d = new JsonObject { ["name"] = name };
        if (kind.Group.Length > 0)
        {
            d["group"] = kind.Group;
        }

        d["kind"] = kind.Plural;
        return d;
    }
}

/// <summary>
/// The test cluster's storage: every object of every kind, one resourceVersion counter, a history
/// of changes for watches from a resourceVersion, and create/update/patch/delete with the API's
/// preconditions (409 on a stale resourceVersion, 422 on a schema violation, dry runs).
/// </summary>
public sealed class ResourceStore
{
    private readonly object _lock = new();
    private readonly Dictionary<string, List<JsonObject>> _objects = new(StringComparer.Ordinal);
    private readonly List<(int Rv, string Type, string Storage, JsonObject Object)> _history = new();
    private readonly List<(string Storage, Channel<(string, JsonObject)> Channel)> _watchers = new();
    private int _resourceVersion = 1000;

    /// <summary>Writes that changed storage (create, update, patch, delete; dry runs excluded).</summary>
    public int Writes { get; private set; }

    public int ResourceVersion
    {
        get
        {
            lock (_lock)
            {
                return _resourceVersion;
            }
        }
    }

    /// <summary>Stores an object of the scenario as it is (no validation, not counted as a write).</summary>
    public JsonObject Seed(ResourceKind kind, JsonObject obj)
    {
        lock (_lock)
        {
            Stamp(obj, ++_resourceVersion);
            Bucket(kind).Add(obj);
            return obj;
        }
    }

    public IReadOnlyList<JsonObject> List(ResourceKind kind, string? ns)
    {
        lock (_lock)
        {
            return Bucket(kind).Where(o => ns is null || Namespace(o) == ns).Select(o => View(kind, o)).ToList();
        }
    }

    public JsonObject? Find(ResourceKind kind, string? ns, string name)
    {
        lock (_lock)
        {
            JsonObject? o = Locate(kind, ns, name);
            return o is null ? null : View(kind, o);
        }
    }

    public JsonObject Get(ResourceKind kind, string? ns, string name) => Find(kind, ns, name) ?? throw ApiError.NotFound(kind, name);

    public JsonObject Create(ResourceKind kind, string? ns, JsonObject body, bool dryRun, List<string> warnings, string fieldValidation = "Warn")
    {
        string name = body["metadata"]?["name"]?.GetValue<string>() ?? string.Empty;
        if (name.Length == 0)
        {
            throw Invalid(kind, name, new FieldError("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"));
        }

        lock (_lock)
        {
            if (Locate(kind, ns, name) is not null)
            {
                throw new ApiError(409, "AlreadyExists", $"{kind.Qualified} \"{name}\" already exists", ApiError.Detail(kind, name));
            }

            JsonObject stored = Admit(kind, name, body, warnings, fieldValidation);
            JsonObject meta = stored["metadata"]!.AsObject();
            meta["uid"] = Guid.NewGuid().ToString();
            meta["creationTimestamp"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture);
            if (kind.Namespaced)
            {
                meta["namespace"] = ns;
            }

            meta.Remove("resourceVersion");
            return Commit(kind, null, stored, dryRun, "ADDED");
        }
    }

    /// <summary>PUT: the body replaces the object when its resourceVersion is the current one.</summary>
    public JsonObject Update(ResourceKind kind, string? ns, string name, JsonObject body, bool dryRun, List<string> warnings, string fieldValidation = "Warn")
    {
        lock (_lock)
        {
            JsonObject current = Locate(kind, ns, name) ?? throw ApiError.NotFound(kind, name);
            string? wanted = body["metadata"]?["resourceVersion"]?.GetValue<string>();
            if (string.IsNullOrEmpty(wanted) && kind.Custom)
            {
                throw Invalid(kind, name, new FieldError("metadata.resourceVersion", "FieldValueInvalid", "Invalid value: 0x0: must be specified for an update"));
            }

            if (!string.IsNullOrEmpty(wanted) && wanted != RvOf(current))
            {
                throw ApiError.Conflict(kind, name);
            }

            JsonObject stored = Admit(kind, name, body, warnings, fieldValidation);
            KeepIdentity(current, stored);
            return Commit(kind, current, stored, dryRun, "MODIFIED");
        }
    }

    /// <summary>PATCH with a merge patch or a JSON patch; a resourceVersion in the result is a precondition.</summary>
    public JsonObject Patch(ResourceKind kind, string? ns, string name, string contentType, string patch, bool dryRun, List<string> warnings, string fieldValidation = "Warn")
    {
        lock (_lock)
        {
            JsonObject current = Locate(kind, ns, name) ?? throw ApiError.NotFound(kind, name);
            JsonNode? patched;
            try
            {
                patched = contentType switch
                {
                    "application/merge-patch+json" => JsonPatching.Merge(View(kind, current), JsonNode.Parse(patch)),
                    "application/strategic-merge-patch+json" when !kind.Custom => JsonPatching.Merge(View(kind, current), JsonNode.Parse(patch)),
                    "application/json-patch+json" => JsonPatching.Apply(View(kind, current), JsonNode.Parse(patch) as JsonArray
                        ?? throw new FormatException("a JSON patch is an array of operations")),
                    _ => throw new ApiError(415, "UnsupportedMediaType",
                        $"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{(kind.Custom ? string.Empty : ", application/strategic-merge-patch+json")}"),
                };
            }
            catch (System.Text.Json.JsonException ex)
            {
                throw new ApiError(400, "BadRequest", $"error decoding patch: {ex.Message}");
            }
            catch (FormatException ex)
            {
                throw new ApiError(422, "Invalid", $"the server rejected our request due to an error in our request: {ex.Message}");
            }

            if (patched is not JsonObject body)
            {
                throw new ApiError(400, "BadRequest", "the patch did not produce an object");
            }

            string? wanted = body["metadata"]?["resourceVersion"]?.GetValue<string>();
            if (!string.IsNullOrEmpty(wanted) && wanted != RvOf(current))
            {
                throw ApiError.Conflict(kind, name);
            }

            JsonObject stored = Admit(kind, name, body, warnings, fieldValidation);
            KeepIdentity(current, stored);
            return Commit(kind, current, stored, dryRun, "MODIFIED");
        }
    }

    public JsonObject Delete(ResourceKind kind, string? ns, string name, bool dryRun)
    {
        lock (_lock)
        {
            JsonObject current = Locate(kind, ns, name) ?? throw ApiError.NotFound(kind, name);
            JsonObject view = View(kind, current);
            if (!dryRun)
            {
                Bucket(kind).Remove(current);
                Publish(kind, "DELETED", current, ++_resourceVersion);
                Writes++;
            }

            return view;
        }
    }

    /// <summary>
    /// A watch: changes after fromVersion (replayed from history), or, without one, every current
    /// object as ADDED followed by the changes; ends when the token is cancelled.
    /// </summary>
    public async IAsyncEnumerable<(string Type, JsonObject Object)> Watch(ResourceKind kind, string? ns, int? fromVersion,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var channel = Channel.CreateUnbounded<(string, JsonObject)>();
        var initial = new List<(string, JsonObject)>();
        lock (_lock)
        {
            if (fromVersion is int from && from > 0)
            {
                if (_history.Count > 0 && from < _history[0].Rv - 1)
                {
                    throw new ApiError(410, "Expired", $"too old resource version: {from} ({_history[0].Rv - 1})");
                }

                initial.AddRange(_history.Where(h => h.Rv > from && h.Storage == kind.StorageKey).Select(h => (h.Type, h.Object)));
            }
            else
            {
                initial.AddRange(Bucket(kind).Select(o => ("ADDED", o)));
            }

            _watchers.Add((kind.StorageKey, channel));
        }

        try
        {
            foreach ((string type, JsonObject o) in initial)
            {
                if (ns is null || Namespace(o) == ns)
                {
                    yield return (type, View(kind, o));
                }
            }

            await foreach ((string type, JsonObject o) in channel.Reader.ReadAllAsync(cancellationToken))
            {
                if (ns is null || Namespace(o) == ns)
                {
                    yield return (type, View(kind, o));
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                _watchers.RemoveAll(w => w.Channel == channel);
            }
        }
    }

    private JsonObject Commit(ResourceKind kind, JsonObject? current, JsonObject stored, bool dryRun, string type)
    {
        if (dryRun)
        {
            if (current is not null)
            {
                stored["metadata"]!["resourceVersion"] = RvOf(current);
            }

            return View(kind, stored);
        }

        int rv = ++_resourceVersion;
        Stamp(stored, rv);
        if (current is not null)
        {
            List<JsonObject> bucket = Bucket(kind);
            bucket[bucket.IndexOf(current)] = stored;
        }
        else
        {
            Bucket(kind).Add(stored);
        }

        Publish(kind, type, stored, rv);
        Writes++;
        return View(kind, stored);
    }

    /// <summary>
    /// Prunes unknown fields (fieldValidation Warn: a warning each, the default; Ignore: silently;
    /// Strict: a 400) and validates against the CRD schema (422).
    /// </summary>
    private static JsonObject Admit(ResourceKind kind, string name, JsonObject body, List<string> warnings, string fieldValidation)
    {
        var stored = (JsonObject)body.DeepClone();
        stored["apiVersion"] = kind.GroupVersion;
        stored["kind"] = kind.Kind;
        if (stored["metadata"] is not JsonObject meta)
        {
            stored["metadata"] = meta = new JsonObject();
        }

        meta["name"] = name;
        if (kind.Schema is { } schema)
        {
            IReadOnlyList<string> unknown = schema.Prune(stored);
            if (unknown.Count > 0 && fieldValidation == "Strict")
            {
                throw new ApiError(400, "BadRequest", $"{kind.Kind} in version \"{kind.Version}\" cannot be handled as a {kind.Kind}: strict decoding error: {string.Join(", ", unknown.Select(f => $"unknown field \"{f}\""))}");
            }

            if (fieldValidation != "Ignore")
            {
                warnings.AddRange(unknown.Select(f => $"unknown field \"{f}\""));
            }

            IReadOnlyList<FieldError> errors = schema.Validate(stored);
            if (errors.Count > 0)
            {
                throw Invalid(kind, name, errors.ToArray());
            }
        }

        return stored;
    }

    /// <summary>The 422 Status the API server writes for a schema violation.</summary>
    public static ApiError Invalid(ResourceKind kind, string name, params FieldError[] errors)
    {
        string list = errors.Length == 1 ? errors[0].ToString() : "[" + string.Join(", ", errors.Select(e => e.ToString())) + "]";
        JsonObject details = ApiError.Detail(kind, name);
        details["kind"] = kind.Kind;
        details["causes"] = new JsonArray(errors.Select(e => (JsonNode)new JsonObject
        {
            ["reason"] = e.Reason,
            ["message"] = e.Message,
            ["field"] = e.Field,
        }).ToArray());
        return new ApiError(422, "Invalid", $"{kind.Kind}.{kind.Group} \"{name}\" is invalid: {list}".Replace(". \"", " \"", StringComparison.Ordinal), details);
    }

    private static void KeepIdentity(JsonObject current, JsonObject stored)
    {
        JsonObject meta = stored["metadata"]!.AsObject();
        foreach (string key in new[] { "uid", "creationTimestamp", "namespace" })
        {
            if (current["metadata"]?[key] is JsonNode value)
            {
                meta[key] = value.DeepClone();
            }
        }
    }

    private void Publish(ResourceKind kind, string type, JsonObject obj, int rv)
    {
        _history.Add((rv, type, kind.StorageKey, (JsonObject)obj.DeepClone()));
        if (_history.Count > 10000)
        {
            _history.RemoveRange(0, 1000);
        }

        foreach ((string storage, Channel<(string, JsonObject)> channel) in _watchers)
        {
            if (storage == kind.StorageKey)
            {
                channel.Writer.TryWrite((type, (JsonObject)obj.DeepClone()));
            }
        }
    }

    /// <summary>The object as this kind serves it (the apiVersion of the group asked for).</summary>
    private static JsonObject View(ResourceKind kind, JsonObject o)
    {
        var copy = (JsonObject)o.DeepClone();
        copy["apiVersion"] = kind.GroupVersion;
        copy["kind"] = kind.Kind;
        return copy;
    }

    private JsonObject? Locate(ResourceKind kind, string? ns, string name) =>
        Bucket(kind).FirstOrDefault(o => Name(o) == name && (!kind.Namespaced || Namespace(o) == ns));

    private List<JsonObject> Bucket(ResourceKind kind)
    {
        if (!_objects.TryGetValue(kind.StorageKey, out List<JsonObject>? list))
        {
            _objects[kind.StorageKey] = list = new List<JsonObject>();
        }

        return list;
    }

    private static void Stamp(JsonObject o, int rv)
    {
        if (o["metadata"] is not JsonObject meta)
        {
            o["metadata"] = meta = new JsonObject();
        }

        meta["resourceVersion"] = rv.ToString(CultureInfo.InvariantCulture);
        meta["uid"] ??= Guid.NewGuid().ToString();
        meta["creationTimestamp"] ??= ApiObjects.Stamp;
    }

    private static string? RvOf(JsonObject o) => o["metadata"]?["resourceVersion"]?.GetValue<string>();

    public static string Name(JsonObject o) => o["metadata"]!["name"]!.GetValue<string>();

    public static string? Namespace(JsonObject o) => o["metadata"]?["namespace"]?.GetValue<string>();
}
