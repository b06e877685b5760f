namespace CalicoBpf.Cluster;

/// <summary>One field's change in a planned Set-FelixBpfConfig.</summary>
public sealed record FelixFieldChange(FelixField Field, JsonNode? Old, JsonNode? New)
{
    public override string ToString() => $"{Field.Json}: {FelixBpfConfig.ShowValue(Old)} -> {FelixBpfConfig.ShowValue(New)}";
}

/// <summary>A change computed against one version of one FelixConfiguration: applied only if that version, or one that left these fields alone, is current.</summary>
public sealed record FelixChangePlan(string Name, ResourceRef Resource, bool Exists, string ResourceVersion, IReadOnlyList<FelixFieldChange> Changes)
{
    public bool CutsTraffic => Changes.Any(c => c.Field.CutsTraffic);
}

/// <summary>A value the cluster's FelixConfiguration CRD refuses, found before anything was sent.</summary>
public sealed class FelixValidationException : Exception
{
    public FelixValidationException(string message, IReadOnlyList<string> problems)
        : base(message) => Problems = problems;

    public IReadOnlyList<string> Problems { get; }
}

/// <summary>A concurrent writer changed the same fields since they were read: nothing was overwritten.</summary>
public sealed class FelixConflictException : Exception
{
    public FelixConflictException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// FelixConfiguration through the Kubernetes API: the group the cluster serves (projectcalico.org/v3
/// when discovery lists it, else crd.projectcalico.org/v1), its CRD's schema for validation before
/// any write, reads, effective values per node, and merge patches that carry the resourceVersion
/// they were computed from (a conflict is re-read and re-applied only when the fields it changes
/// were left alone meanwhile).
/// </summary>
public sealed class FelixConfigClient
{
    public const string V3 = "projectcalico.org/v3";
    public const string V1 = "crd.projectcalico.org/v1";
    private static readonly ResourceRef Crds = new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
    private readonly IClusterConnection _cluster;
    private readonly CancellationToken _cancellationToken;
    private ResourceRef? _resource;
    private StructuralSchema? _schema;
    private IReadOnlyList<FelixBpfConfig>? _configs;
    private IReadOnlyList<(FelixBpfConfig Config, CalicoSelector? Selector, string? Problem)>? _selectorConfigs;
    private readonly Dictionary<string, Dictionary<string, (string Value, string Detail)>> _environments = new(StringComparer.Ordinal);
    private bool _schemaLoaded;

    public FelixConfigClient(IClusterConnection cluster, CancellationToken cancellationToken)
    {
        _cluster = cluster;
        _cancellationToken = cancellationToken;
    }

    /// <summary>Another Calico kind (ippools, blockaffinities) in the group FelixConfiguration is served in.</summary>
    public ResourceRef Calico(string plural) => Resource with { Plural = plural };

    /// <summary>FelixConfiguration in the group this cluster serves.</summary>
    public ResourceRef Resource
    {
        get
        {
            if (_resource is null)
            {
                IReadOnlyCollection<string> served = _cluster.ServedGroupVersions(_cancellationToken);
                _resource = served.Contains(V3) ? new ResourceRef("projectcalico.org", "v3", "felixconfigurations")
                    : served.Contains(V1) ? new ResourceRef("crd.projectcalico.org", "v1", "felixconfigurations")
                    : throw new ClusterException("This cluster serves no FelixConfiguration (neither projectcalico.org/v3 nor crd.projectcalico.org/v1): is Calico installed?", 404);
            }

            return _resource;
        }
    }

    /// <summary>
    /// The openAPIV3Schema of the cluster's FelixConfiguration CRD (of the group in use, else the
    /// other: their fields are the same); null when no CRD can be read (the API server then validates alone).
    /// </summary>
    public StructuralSchema? Schema
    {
        get
        {
            if (!_schemaLoaded)
            {
                _schemaLoaded = true;
                foreach (string group in new[] { Resource.Group, "crd.projectcalico.org", "projectcalico.org" }.Distinct())
                {
                    JsonObject? crd;
                    try
                    {
                        crd = _cluster.GetResource(Crds, "felixconfigurations." + group, _cancellationToken);
                    }
                    catch (ClusterException ex) when (ex.StatusCode == 403)
                    {
                        break; // not allowed to read CRDs: the server's own validation still applies
                    }

                    if (crd?["spec"]?["versions"] is JsonArray versions
                        && versions.OfType<JsonObject>().FirstOrDefault(v => v["served"]?.GetValue<bool>() != false)?["schema"]?["openAPIV3Schema"] is JsonObject schema)
                    {
                        _schema = new StructuralSchema(schema);
                        break;
                    }
                }
            }

            return _schema;
        }
    }

    /// <summary>Whether this cluster's CRD has the field (true when the schema cannot be read).</summary>
    public bool Knows(FelixField field) => Schema is not { } s || s.Field("spec." + field.Json) is not null;

    public IReadOnlyList<FelixBpfConfig> List() =>
        _cluster.ListResources(Resource, _cancellationToken).Select(o => FelixFields.Read(o)).OrderBy(c => c.Name == "default" ? 0 : 1).ThenBy(c => c.Name, StringComparer.Ordinal).ToList();

    /// <summary>Every FelixConfiguration as first listed by this client: what reads share (changes read afresh).</summary>
    public IReadOnlyList<FelixBpfConfig> Configs => _configs ??= List();

    public FelixBpfConfig? Get(string name) => _cluster.GetResource(Resource, name, _cancellationToken) is { } o ? FelixFields.Read(o) : null;

    /// <summary>
    /// Computes a change: the current object (or none, when <paramref name="create"/> allows making it),
    /// the fields that differ, and the whole result checked against the CRD schema.
    /// </summary>
    public FelixChangePlan Plan(string name, IReadOnlyList<(FelixField Field, JsonNode? Value)> values, bool create)
    {
        var problems = new List<string>();
        foreach ((FelixField field, _) in values.Where(v => !Knows(v.Field)))
        {
            problems.Add($"{field.Json}: this cluster's FelixConfiguration CRD has no such field (its Calico version does not know it); drop -{field.Property}.");
        }

        if (problems.Count > 0)
        {
            throw new FelixValidationException($"FelixConfiguration {name} was not changed: {string.Join(" ", problems)}", problems);
        }

        JsonObject? current = _cluster.GetResource(Resource, name, _cancellationToken);
        if (current is null && !create)
        {
            throw new ClusterException($"There is no FelixConfiguration {name} in {Resource.GroupVersion}. Get-FelixBpfConfig lists them; -Node creates node.NAME when it is missing.", 404);
        }

        JsonObject spec = current?["spec"] as JsonObject ?? new JsonObject();
        var changes = new List<FelixFieldChange>();
        var result = (JsonObject)(current?.DeepClone() ?? new JsonObject
        {
            ["apiVersion"] = Resource.GroupVersion,
            ["kind"] = "FelixConfiguration",
            ["metadata"] = new JsonObject { ["name"] = name },
        });
        var resultSpec = (JsonObject)(result["spec"] ??= new JsonObject());
        foreach ((FelixField field, JsonNode? value) in values)
        {
            JsonNode? old = spec[field.Json];
            if (!JsonNode.DeepEquals(old, value))
            {
                changes.Add(new FelixFieldChange(field, old?.DeepClone(), value?.DeepClone()));
            }

            resultSpec.Remove(field.Json);
            if (value is not null)
            {
                resultSpec[field.Json] = value.DeepClone();
            }
        }

        if (Schema is { } schema)
        {
            foreach (FieldError error in schema.Validate(result).Where(e => values.Any(v => e.Field == "spec." + v.Field.Json || e.Field.StartsWith("spec." + v.Field.Json + ".", StringComparison.Ordinal))))
            {
                problems.Add(Explain(error));
            }
        }

        // Felix's own rules, for the fields the CRD let through (one problem per field).
        foreach ((FelixField field, JsonNode? value) in values)
        {
            if (!problems.Any(p => p.StartsWith(field.Json + ":", StringComparison.Ordinal)) && FelixRules.Check(field, value) is { } problem)
            {
                problems.Add(problem);
            }
        }

        if (problems.Count > 0)
        {
            throw new FelixValidationException($"FelixConfiguration {name} was not changed, nothing was sent: {string.Join(" ", problems)}", problems);
        }

        return new FelixChangePlan(name, Resource, current is not null, current?["metadata"]?["resourceVersion"]?.GetValue<string>() ?? string.Empty, changes);
    }

    /// <summary>
    /// Applies a plan: a merge patch carrying the plan's resourceVersion (or a create). On a 409 the
    /// object is read again; when none of the plan's fields changed meanwhile the patch is sent again
    /// on the new version, otherwise nothing is written and the conflict is reported.
    /// </summary>
    public FelixBpfConfig Apply(FelixChangePlan plan, bool dryRun)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                if (!plan.Exists)
                {
                    var spec = new JsonObject();
                    foreach (FelixFieldChange c in plan.Changes.Where(c => c.New is not null))
                    {
                        spec[c.Field.Json] = c.New!.DeepClone();
                    }

                    return FelixFields.Read(_cluster.CreateResource(plan.Resource, new JsonObject
                    {
                        ["apiVersion"] = plan.Resource.GroupVersion,
                        ["kind"] = "FelixConfiguration",
                        ["metadata"] = new JsonObject { ["name"] = plan.Name },
                        ["spec"] = spec,
                    }, dryRun, _cancellationToken));
                }

                var patchSpec = new JsonObject();
                foreach (FelixFieldChange c in plan.Changes)
                {
                    patchSpec[c.Field.Json] = c.New?.DeepClone(); // null removes the field (merge patch)
                }

                var patch = new JsonObject { ["metadata"] = new JsonObject { ["resourceVersion"] = plan.ResourceVersion }, ["spec"] = patchSpec };
                return FelixFields.Read(_cluster.PatchResource(plan.Resource, plan.Name, patch.ToJsonString(), dryRun, _cancellationToken));
            }
            catch (ClusterException ex) when (ex.StatusCode == 409 && attempt < 3)
            {
                JsonObject? now = _cluster.GetResource(plan.Resource, plan.Name, _cancellationToken);
                JsonObject nowSpec = now?["spec"] as JsonObject ?? new JsonObject();
                string? meanwhile = (plan.Exists, now is not null) switch
                {
                    (true, false) => "it was deleted meanwhile",
                    (false, true) => "it was created meanwhile",
                    _ => plan.Changes.Where(c => !JsonNode.DeepEquals(nowSpec[c.Field.Json], c.Old)).ToList() is { Count: > 0 } touched
                        ? string.Join("; ", touched.Select(c => $"{c.Field.Json} was {FelixBpfConfig.ShowValue(c.Old)} and is now {FelixBpfConfig.ShowValue(nowSpec[c.Field.Json])}"))
                        : null,
                };
                if (meanwhile is not null)
                {
                    throw new FelixConflictException(
                        $"FelixConfiguration {plan.Name} was changed by someone else while this change was prepared ({meanwhile}); nothing was written. Read it again (Get-FelixBpfConfig) and decide.");
                }

                plan = plan with { ResourceVersion = now?["metadata"]?["resourceVersion"]?.GetValue<string>() ?? string.Empty };
            }
        }
    }

    /// <summary>
    /// The selector-scoped FelixConfigurations whose nodeSelector matches the node's labels, the one
    /// Felix uses first (the oldest by creationTimestamp, then by name), and the problems found on the
    /// way: several matches (Felix uses only the first) and selectors that do not parse (Felix cannot
    /// apply them either).
    /// </summary>
    public (IReadOnlyList<FelixBpfConfig> Matching, IReadOnlyList<string> Problems) SelectorScoped(CalicoNode node)
    {
        var matching = SelectorConfigs.Where(c => c.Selector?.Matches(node.Labels) == true).Select(c => c.Config).ToList();
        var problems = SelectorConfigs.Select(c => c.Problem).OfType<string>().ToList();
        if (matching.Count > 1)
        {
            problems.Add($"Several selector-scoped FelixConfigurations match node {node.Node} ({string.Join(", ", matching.Select(m => m.Name))}): Felix uses only the oldest, {matching[0].Name}, and logs a warning.");
        }

        return (matching, problems);
    }

    /// <summary>The selector-scoped configurations, oldest first (then by name), each with its nodeSelector parsed or the reason it does not parse: once per client, not per node.</summary>
    private IReadOnlyList<(FelixBpfConfig Config, CalicoSelector? Selector, string? Problem)> SelectorConfigs => _selectorConfigs ??= Configs
        .Where(c => c.Scope == "Selector")
        .OrderBy(c => c.Json["metadata"]?["creationTimestamp"]?.GetValue<string>() is string t
            && DateTime.TryParse(t, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal, out DateTime when) ? when : DateTime.MaxValue)
        .ThenBy(c => c.Name, StringComparer.Ordinal)
        .Select(c =>
        {
            string text = c.Json["spec"]?["nodeSelector"] is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : string.Empty;
            try
            {
                return (c, CalicoSelector.Parse(text), (string?)null);
            }
            catch (FormatException ex)
            {
                return (c, (CalicoSelector?)null, $"FelixConfiguration {c.Name} is not applied to any node: {ex.Message}");
            }
        })
        .ToList();

    /// <summary>
    /// What Felix on a node uses for each field this cluster's CRD has: the calico-node container's
    /// FELIX_* variables (the DaemonSet), node.NAME, the selector-scoped configuration that matches the
    /// node, default, or the built-in default.
    /// </summary>
    public IReadOnlyList<FelixEffectiveValue> Effective(CalicoNode node)
    {
        // One listing and one DaemonSet read serve every node this client is asked about.
        Dictionary<string, (string Value, string Detail)> env = CalicoNodeEnvironment(node);
        FelixBpfConfig? perNode = Configs.FirstOrDefault(c => c.Name == "node." + node.Node);
        FelixBpfConfig? bySelector = SelectorScoped(node).Matching.FirstOrDefault();
        FelixBpfConfig? global = Configs.FirstOrDefault(c => c.Name == "default");
        // Defaults changed between releases (bpfAttachType TC, TCX, Netkit): the node's image names its release.
        CalicoRelease release = node.CalicoRelease?.Release ?? CalicoRelease.Newest;
        var result = new List<FelixEffectiveValue>();
        foreach (FelixField f in FelixFields.All.Where(Knows))
        {
            var sources = new List<(FelixValueSource Source, string Value, string Detail)>();
            if (env.TryGetValue(f.Environment, out var e))
            {
                sources.Add((FelixValueSource.Environment, e.Value, e.Detail));
            }

            foreach ((FelixBpfConfig? config, FelixValueSource source) in new[]
            {
                (perNode, FelixValueSource.NodeConfiguration), (bySelector, FelixValueSource.SelectorConfiguration), (global, FelixValueSource.GlobalConfiguration),
            })
            {
                // Empty or null means unset (reference 1.2): Felix falls back to the next source.
                if (config?.Json["spec"]?[f.Json] is JsonNode v && !(v.GetValueKind() == JsonValueKind.String && v.GetValue<string>().Length == 0))
                {
                    sources.Add((source, FelixBpfConfig.ShowValue(v), "FelixConfiguration " + config.Name));
                }
            }

            sources.Add((FelixValueSource.BuiltInDefault, f.DefaultIn(release) ?? string.Empty, $"Felix's default in {release.Line}"));
            (FelixValueSource src, string value, string detail) = sources[0];
            result.Add(new FelixEffectiveValue
            {
                Node = node.Node,
                Field = f.Json,
                Value = value,
                Source = src,
                SourceDetail = detail,
                Overrides = string.Join("; ", sources.Skip(1).Where(s => s.Source != FelixValueSource.BuiltInDefault).Select(s => $"{s.Value} ({s.Detail})")),
            });
        }

        return result;
    }

    /// <summary>FELIX_* variables (upper-cased names) of the calico-node container, from its DaemonSet.</summary>
    public Dictionary<string, (string Value, string Detail)> CalicoNodeEnvironment(CalicoNode node)
    {
        if (string.IsNullOrEmpty(node.Namespace))
        {
            return new Dictionary<string, (string, string)>(StringComparer.OrdinalIgnoreCase);
        }

        if (!_environments.TryGetValue(node.Namespace, out Dictionary<string, (string, string)>? env))
        {
            _environments[node.Namespace] = env = ReadEnvironment(node.Namespace);
        }

        return env;
    }

    private Dictionary<string, (string Value, string Detail)> ReadEnvironment(string ns)
    {
        var env = new Dictionary<string, (string, string)>(StringComparer.OrdinalIgnoreCase);

        JsonObject? ds = CalicoNodeDaemonSet(ns);
        if (ds is null)
        {
            return env;
        }

        string where = $"DaemonSet {ns}/{ds["metadata"]?["name"]}";
        JsonObject? container = (ds["spec"]?["template"]?["spec"]?["containers"] as JsonArray)?.OfType<JsonObject>()
            .FirstOrDefault(c => c["name"]?.GetValue<string>() == "calico-node");
        foreach (JsonObject e in (container?["env"] as JsonArray ?? new JsonArray()).OfType<JsonObject>())
        {
            string name = e["name"]?.GetValue<string>() ?? string.Empty;
            if (!name.StartsWith("FELIX_", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            string value = e["value"]?.GetValue<string>()
                ?? (e["valueFrom"] is JsonObject from ? "(from " + from.ToJsonString() + ")" : string.Empty);
            env[name.ToUpperInvariant()] = (value, $"{name} in {where}");
        }

        return env;
    }

    /// <summary>The calico-node DaemonSet of the namespace (by name, else by its pods' k8s-app label).</summary>
    public JsonObject? CalicoNodeDaemonSet(string ns)
    {
        var daemonSets = new ResourceRef("apps", "v1", "daemonsets", ns);
        return _cluster.GetResource(daemonSets, "calico-node", _cancellationToken)
            ?? _cluster.ListResources(daemonSets, _cancellationToken).FirstOrDefault(d =>
                d["spec"]?["template"]?["metadata"]?["labels"]?["k8s-app"]?.GetValue<string>() == "calico-node");
    }

    /// <summary>A schema error in words that name the field and what it accepts.</summary>
    public static string Explain(FieldError error)
    {
        string field = error.Field.StartsWith("spec.", StringComparison.Ordinal) ? error.Field[5..] : error.Field;
        Match m = Regex.Match(error.Message, @"^Invalid value: (?<v>.*): \S+ in body should match '(?<p>.*)'$");
        if (m.Success)
        {
            string pattern = m.Groups["p"].Value;
            Match choices = Regex.Match(pattern, @"^\^\(\?i\)\((?<c>[A-Za-z0-9|]+)\)\?\$$");
            if (choices.Success)
            {
                return $"{field}: {m.Groups["v"].Value} is not accepted; use one of {string.Join(", ", choices.Groups["c"].Value.Split('|'))} (any case), or an empty string for the default.";
            }

            if (pattern.Contains("(ms|s|m|h)", StringComparison.Ordinal))
            {
                return $"{field}: {m.Groups["v"].Value} is not a duration this CRD accepts; use whole numbers with units h, m, s or ms, such as 1s, 500ms or 1m30s (the CRD refuses fractions such as 1.5s: write 1500ms).";
            }

            return $"{field}: {m.Groups["v"].Value} does not match the CRD's pattern {pattern}.";
        }

        return $"{field}: {error.Message}";
    }
}
