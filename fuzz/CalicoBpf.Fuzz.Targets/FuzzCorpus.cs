namespace CalicoBpf.Fuzz;

/// <summary>
/// The inputs a target is replayed on in the tests: its seed corpus (fuzz/corpus/TARGET) and every
/// input that once crashed it (tests/fuzz-regressions/TARGET), found above the running binaries.
/// </summary>
public static class FuzzCorpus
{
    private static readonly string[] Folders = { "fuzz/corpus", "tests/fuzz-regressions" };

    private static readonly Lazy<string> RootDirectory = new(() =>
    {
        string dir = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(dir, "fuzz", "corpus")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("fuzz/corpus is not above the test binaries.");
        }

        return dir;
    });

    /// <summary>The repository's root: the folder above the binaries that holds fuzz/corpus.</summary>
    public static string Root => RootDirectory.Value;

    /// <summary>The targets that have a folder of inputs, in the corpus or the regressions (the folder is named after its target).</summary>
    public static IEnumerable<string> TargetsWithInputs() =>
        Folders.SelectMany(f => Directory.EnumerateDirectories(Path.Combine(Root, f))).Select(Path.GetFileName).OfType<string>().Distinct();

    /// <summary>Every input of these targets as xunit member data: the target, and the file relative to <see cref="Root"/>.</summary>
    public static IEnumerable<object[]> Inputs(IEnumerable<string> targets) =>
        from target in targets
        from folder in Folders
        let dir = Path.Combine(Root, folder, target)
        where Directory.Exists(dir)
        from file in Directory.EnumerateFiles(dir)
        select new object[] { target, Path.GetRelativePath(Root, file) };

    /// <summary>The bytes of an input that <see cref="Inputs"/> named.</summary>
    public static byte[] Read(string input) => File.ReadAllBytes(Path.Combine(Root, input));

    /// <summary>The target's seed corpus; the fuzzer cannot start a target without one.</summary>
    public static IEnumerable<string> Seeds(string target) => Directory.EnumerateFiles(Path.Combine(Root, "fuzz", "corpus", target));
}
