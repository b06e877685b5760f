namespace CalicoBpf.Bundles;

/// <summary>
/// Compares one family of a node's objects on two sides: each object keyed by what identifies it
/// there (a flow, a frontend, a prefix), and compared property by property as a bundle writes it
/// (<see cref="BundleFormat.Json"/>), leaving out what moves on its own (ages, timestamps, counters,
/// hit counts, fill) unless asked. The reference side's objects are held, keyed; the difference side streams.
/// </summary>
public static class StateComparer
{
    /// <summary>Per family: the key of an object, and the properties that move with time or traffic.</summary>
    private static readonly Dictionary<string, (Func<object, string> Key, string[] Moving)> Families = new(StringComparer.Ordinal)
    {
        ["conntrack"] = (o => o is ConntrackEntry e ? $"{e.Protocol} {e.Source} -> {e.Destination} {e.Type}" : Other(o),
            new[] { "Age", "LastSeen", "LastSeenNanoseconds", "ResetSeen", "ResetSeenNanoseconds", "Created", "CreatedNanoseconds", "RawValue",
                "BytesForward", "PacketsForward", "BytesReverse", "PacketsReverse", "Forward", "Reverse" }),
        ["nat"] = (o => o is NatFrontend f ? $"{f.Frontend} {f.Protocol}" + (f.SourceCidr is { Length: > 0 } cidr ? " from " + cidr : string.Empty) + (f.IsNodePortWildcard ? " (any node address)" : string.Empty) : Other(o),
            Array.Empty<string>()),
        ["nat-affinity"] = (o => o is NatAffinity a ? $"{a.ServiceEndpoint} {a.Protocol} client {a.ClientAddress}" : Other(o), new[] { "Age", "LastRefreshed", "TimestampNanoseconds" }),
        // The v4 and v6 Maglev maps number their services apart: the same id and slot in both are two entries.
        ["maglev"] = (o => o is MaglevEntry m ? $"{IpFamilyPrefix(ConntrackText.IsIPv6(m.BackendAddressValue))}service {m.ServiceId} slot {m.Ordinal}" : Other(o), Array.Empty<string>()),
        ["routes"] = (o => o is Route r ? r.Cidr : Other(o), Array.Empty<string>()),
        ["ipsets"] = (o => o is IpSetMember m ? $"{m.SetIdText} {m.Member}" : Other(o), Array.Empty<string>()),
        ["arp"] = (o => o is ArpEntry a ? $"{a.Address} on {a.Interface}" : Other(o), Array.Empty<string>()),
        ["interfaces"] = (o => o is InterfaceState i ? i.Name : Other(o), Array.Empty<string>()),
        ["attachments"] = (o => o is ProgramAttachment a ? $"{a.Interface} {a.AttachPoint}" : Other(o), Array.Empty<string>()),
        ["qdiscs"] = (o => o is QdiscStatistic q ? $"{q.Interface} {q.Handle} {q.Kind}" : Other(o), new[] { "Bytes", "Packets", "Drops", "Overlimits", "Requeues", "Backlog", "QueueLength" }),
        ["counters"] = (o => o is InterfaceCounter c ? $"{c.Interface} {c.Id}" : Other(o), new[] { "Ingress", "Egress", "Xdp" }),
        // An interface's v4 and v6 programs each carry the same policies: a rule of each is two rules.
        ["policy"] = (o => o is PolicyRule r ? $"{r.Interface} {r.Hook} {IpFamilyPrefix(r.IPv6)}{r.Tier}/{r.Policy}[{r.Index}]" : Other(o), new[] { "HitCount" }),
        ["connect-time"] = (o => o is ConnectTimeProgram p ? $"{p.Cgroup} {p.AttachType} {p.Name}" : Other(o), new[] { "Loaded" }),
        ["maps"] = (o => o is MapInfo m ? m.Name : Other(o), new[] { "Entries", "FillPercent" }),
    };

    /// <summary>The families Compare-BpfState compares (the trace is a log, not a state).</summary>
    public static IReadOnlyList<string> Names { get; } = DataplaneFamilies.Names.Where(Families.ContainsKey).ToList();

    /// <summary>The properties of a family left out unless -IncludeVolatile.</summary>
    public static IReadOnlyList<string> Moving(string family) => Families[family].Moving;

    /// <summary>
    /// The differences of one family between two sides, keyed objects in the difference side's order
    /// (Added and Changed), then what only the reference side has (Removed), in its order.
    /// </summary>
    public static IEnumerable<StateDifference> Compare(string family, string referenceNode, IEnumerable<object> reference,
        string differenceNode, IEnumerable<object> difference, bool includeVolatile, CancellationToken cancellationToken)
    {
        (Func<object, string> key, string[] moving) = Families[family];
        var ignored = new HashSet<string>(includeVolatile ? new[] { "Node" } : moving.Append("Node"), StringComparer.Ordinal);
        var held = new Dictionary<string, object>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (object o in reference)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string k = Unique(held, key(o));
            held[k] = o;
            order.Add(k);
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (object o in difference)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string k = key(o);
            for (int n = 2; !seen.Add(k); n++)
            {
                k = key(o) + " #" + n;
            }

            if (!held.TryGetValue(k, out object? r))
            {
                yield return new StateDifference { Node = referenceNode, DifferenceNode = differenceNode, Family = family, Key = k, Change = StateChange.Added, Difference = o };
                continue;
            }

            held.Remove(k);
            JsonObject before = Json(r, ignored), after = Json(o, ignored);
            List<string> changed = before.ToJsonString() == after.ToJsonString() ? new List<string>() : Changes(before, after);
            if (changed.Count > 0)
            {
                yield return new StateDifference
                {
                    Node = referenceNode, DifferenceNode = differenceNode, Family = family, Key = k, Change = StateChange.Changed,
                    Properties = new ValueList<string>(changed, "; "), Reference = r, Difference = o,
                };
            }
        }

        foreach (string k in order.Where(held.ContainsKey))
        {
            yield return new StateDifference { Node = referenceNode, DifferenceNode = differenceNode, Family = family, Key = k, Change = StateChange.Removed, Reference = held[k] };
        }
    }

    /// <summary>"IPv6 " in the key of an IPv6 object of a family whose two maps or programs share ids; IPv4 keys stay as they were.</summary>
    private static string IpFamilyPrefix(bool ipv6) => ipv6 ? "IPv6 " : string.Empty;

    private static string Other(object o) => o.ToString() ?? o.GetType().Name;

    private static string Unique(Dictionary<string, object> held, string key)
    {
        string k = key;
        for (int n = 2; held.ContainsKey(k); n++)
        {
            k = key + " #" + n;
        }

        return k;
    }

    private static JsonObject Json(object o, HashSet<string> ignored)
    {
        var json = (JsonObject)JsonSerializer.SerializeToNode(o, o.GetType(), BundleFormat.Json)!;
        foreach (string name in ignored)
        {
            json.Remove(name);
        }

        return json;
    }

    /// <summary>"Name: old -> new" for each property whose JSON differs (lists and objects compared whole).</summary>
    private static List<string> Changes(JsonObject reference, JsonObject difference)
    {
        var changes = new List<string>();
        foreach (string name in reference.Select(p => p.Key).Union(difference.Select(p => p.Key)))
        {
            JsonNode? a = reference[name];
            JsonNode? b = difference[name];
            if (!JsonNode.DeepEquals(a, b))
            {
                changes.Add($"{name}: {Text(a)} -> {Text(b)}");
            }
        }

        return changes;
    }

    private static string Text(JsonNode? n) => n switch
    {
        null => "-",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>() is { Length: > 0 } s ? s : "\"\"",
        _ => n.ToJsonString(),
    };
}
