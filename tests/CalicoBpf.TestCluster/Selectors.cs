using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace CalicoBpf.TestCluster;

/// <summary>
/// labelSelector (a=b, a==b, a!=b, a, !a) and fieldSelector (metadata.name, metadata.namespace,
/// spec.nodeName, status.phase; a field it does not know has no value) of list and watch requests.
/// </summary>
internal static class Selectors
{
    /// <summary>The items both of the request's selectors match (an absent selector matches everything).</summary>
    public static IEnumerable<JsonObject> Filter(IQueryCollection query, IEnumerable<JsonObject> items)
    {
        string labels = query["labelSelector"].ToString();
        string fields = query["fieldSelector"].ToString();
        foreach (JsonObject o in items)
        {
            if (Matches(labels, key => o["metadata"]?["labels"]?[key]?.GetValue<string>())
                && Matches(fields, key => key switch
                {
                    "metadata.name" => ResourceStore.Name(o),
                    "metadata.namespace" => ResourceStore.Namespace(o),
                    "spec.nodeName" => o["spec"]?["nodeName"]?.GetValue<string>(),
                    "status.phase" => o["status"]?["phase"]?.GetValue<string>(),
                    _ => null,
                }))
            {
                yield return o;
            }
        }
    }

    /// <summary>Every comma-separated term of the selector holds for the value <paramref name="valueOf"/> gives its key.</summary>
    private static bool Matches(string selector, Func<string, string?> valueOf)
    {
        foreach (string term in selector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int ne = term.IndexOf("!=", StringComparison.Ordinal);
            int eq = term.IndexOf('=');
            if (ne > 0)
            {
                if (valueOf(term[..ne]) == term[(ne + 2)..])
                {
                    return false;
                }
            }
            else if (eq > 0)
            {
                string key = term[..eq];
                string want = term[(eq + (term.Length > eq + 1 && term[eq + 1] == '=' ? 2 : 1))..];
                if (valueOf(key) != want)
                {
                    return false;
                }
            }
            else if (term.StartsWith('!'))
            {
                if (valueOf(term[1..]) is not null)
                {
                    return false;
                }
            }
            else if (valueOf(term) is null)
            {
                return false;
            }
        }

        return true;
    }
}
