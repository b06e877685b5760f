using CalicoBpf.Fuzz;
using Xunit;

namespace CalicoBpf.Tests;

/// <summary>
/// Every fuzz target on its seed corpus and on every input that once crashed it (tests/fuzz-regressions/TARGET):
/// each must end in a typed error or a fallback, never an unhandled exception.
/// </summary>
public class FuzzRegressionTests
{
    private static string Root()
    {
        string dir = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(dir, "fuzz", "corpus")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("fuzz/corpus is not above the test binaries.");
        }

        return dir;
    }

    public static IEnumerable<object[]> Inputs()
    {
        string root = Root();
        foreach (string folder in new[] { "fuzz/corpus", "tests/fuzz-regressions" })
        {
            string dir = Path.Combine(root, folder);
            foreach (string target in Directory.EnumerateDirectories(dir).Select(Path.GetFileName).OfType<string>())
            {
                foreach (string file in Directory.EnumerateFiles(Path.Combine(dir, target)))
                {
                    yield return new object[] { target, Path.GetRelativePath(root, file) };
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Target_survives(string target, string input)
    {
        Assert.True(Targets.All.ContainsKey(target), $"{input} belongs to no fuzz target");
        Targets.All[target](File.ReadAllBytes(Path.Combine(Root(), input)));
    }

    [Fact]
    public void Every_target_has_a_seed_corpus()
    {
        foreach (string target in Targets.All.Keys)
        {
            Assert.NotEmpty(Directory.EnumerateFiles(Path.Combine(Root(), "fuzz", "corpus", target)));
        }
    }
}
