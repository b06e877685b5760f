using System.Text.RegularExpressions;

namespace CalicoBpf.Tests;

/// <summary>
/// Core's namespaces depend one way (docs/architecture.md, "The layers"): bytes and facts go from
/// Interop to Transport to Maps, never back. Read from the sources, so a using line or a qualified
/// name that turns an arrow round fails here, naming the file.
/// </summary>
public sealed class LayeringTests
{
    /// <summary>What each folder of Core may use of the others (Model, the root namespace, is used by all and uses none).</summary>
    private static readonly Dictionary<string, string[]> Allowed = new()
    {
        ["Interop"] = Array.Empty<string>(),
        ["Isolation"] = Array.Empty<string>(),
        ["Model"] = Array.Empty<string>(),
        ["Transport"] = new[] { "Interop" },
        ["Maps"] = new[] { "Interop", "Transport" },
        ["Trace"] = new[] { "Interop", "Transport", "Maps" },
        ["Cluster"] = new[] { "Interop", "Transport", "Maps", "Isolation" },
        ["Diagnostics"] = new[] { "Interop", "Transport", "Maps", "Trace", "Cluster", "Isolation" },
        ["Flow"] = new[] { "Interop", "Transport", "Maps", "Trace", "Cluster", "Isolation" },
        ["Sampling"] = new[] { "Interop", "Transport", "Maps", "Trace", "Cluster" },
        ["Metrics"] = Array.Empty<string>(),
        ["Bundles"] = new[] { "Interop", "Transport", "Maps", "Trace", "Cluster", "Diagnostics", "Sampling" },
    };

    private static readonly Regex Reference = new(@"\bCalicoBpf\.(Interop|Isolation|Transport|Maps|Trace|Cluster|Diagnostics|Flow|Sampling|Metrics|Bundles)\b|(?<![\w.])(Interop|Transport|Maps|Trace|Cluster|Diagnostics|Flow|Sampling|Metrics|Bundles)\.[A-Z]\w*", RegexOptions.CultureInvariant);

    [Fact]
    public void Every_folder_of_core_uses_only_the_layers_below_it()
    {
        string core = Path.Combine(RepositoryRoot(), "src", "CalicoBpf.Core");
        var wrong = new List<string>();
        foreach ((string folder, string[] allowed) in Allowed)
        {
            foreach (string file in Directory.EnumerateFiles(Path.Combine(core, folder), "*.cs", SearchOption.AllDirectories))
            {
                int n = 0;
                foreach (string line in File.ReadLines(file))
                {
                    n++;
                    string code = line.TrimStart();
                    if (code.StartsWith("//", StringComparison.Ordinal))
                    {
                        continue; // comments and doc comments may name what they are not
                    }

                    foreach (Match m in Reference.Matches(code))
                    {
                        string used = m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value;
                        if (used != folder && !allowed.Contains(used))
                        {
                            wrong.Add($"{Path.GetRelativePath(core, file)}:{n} uses {used}: {code.Trim()}");
                        }
                    }
                }
            }
        }

        Assert.True(wrong.Count == 0, "References against the layers:\n" + string.Join("\n", wrong));
    }

    [Fact]
    public void No_layer_of_core_is_imported_for_every_file()
    {
        // A global using of one of Core's namespaces would make every folder depend on it, unseen.
        string core = Path.Combine(RepositoryRoot(), "src", "CalicoBpf.Core");
        var global = Directory.EnumerateFiles(core, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .SelectMany(f => File.ReadLines(f).Where(l => Regex.IsMatch(l, @"^\s*global\s+using\s+(static\s+)?CalicoBpf\b")).Select(l => Path.GetRelativePath(core, f) + ": " + l.Trim()))
            .ToList();
        Assert.Empty(global);
    }

    [Fact]
    public void The_layer_table_knows_every_folder_of_core()
    {
        string core = Path.Combine(RepositoryRoot(), "src", "CalicoBpf.Core");
        var folders = Directory.EnumerateDirectories(core).Select(Path.GetFileName).Where(f => f is not ("bin" or "obj")).ToList();
        Assert.Equal(folders.Order(StringComparer.Ordinal), Allowed.Keys.Order(StringComparer.Ordinal));
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "CalicoBpf.psd1")))
            {
                return d.FullName;
            }
        }

        throw new DirectoryNotFoundException("The repository root (with CalicoBpf.psd1) is not above " + AppContext.BaseDirectory);
    }
}
