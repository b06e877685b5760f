using System.Reflection;
using System.Runtime.Loader;

namespace CalicoBpf.Isolation;

/// <summary>Reads YAML into Core's types. Implemented in CalicoBpf.Adapters with YamlDotNet.</summary>
public interface IYamlAdapter
{
    T Deserialize<T>(string yaml)
        where T : class, new();

    /// <summary>
    /// Every document of a YAML stream as JSON text, with YAML 1.2 core-schema typing: plain
    /// true/false, null/~, integers and floats become JSON literals, anything quoted stays a string.
    /// </summary>
    IReadOnlyList<string> ToJsonDocuments(string yaml);

    /// <summary>The YamlDotNet version in use (diagnostics, and the isolation test).</summary>
    string Version { get; }
}

/// <summary>
/// The private load context "CalicoBpf": CalicoBpf.Adapters and every third-party assembly it
/// needs load here from the directory CalicoBpf.Core was loaded from, so a different version of
/// the same library loaded by another PowerShell module (or the host) never clashes with ours.
/// Our own assemblies are shared with the default context, so Core's types have one identity.
/// </summary>
public sealed class DependencyLoadContext : AssemblyLoadContext
{
    public static readonly DependencyLoadContext Instance = new(
        Path.GetDirectoryName(typeof(DependencyLoadContext).Assembly.Location) ?? AppContext.BaseDirectory);

    private static readonly Lazy<IYamlAdapter> YamlAdapter = new(() => Instance.Create<IYamlAdapter>("CalicoBpf.Adapters.YamlAdapter"));

    private DependencyLoadContext(string directory)
        : base("CalicoBpf", isCollectible: false) => Directory = directory;

    public string Directory { get; }

    /// <summary>The YAML reader, loaded on first use.</summary>
    public static IYamlAdapter Yaml => YamlAdapter.Value;

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        if (assemblyName.Name is "CalicoBpf.Core" or "CalicoBpf")
        {
            return null; // ours: resolved from the context that loaded Core
        }

        string path = Path.Combine(Directory, assemblyName.Name + ".dll");
        return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
    }

    /// <summary>Creates an adapter of CalicoBpf.Adapters inside this context.</summary>
    public T Create<T>(string typeName)
        where T : class
    {
        string path = Path.Combine(Directory, "CalicoBpf.Adapters.dll");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"CalicoBpf.Adapters.dll is missing from {Directory}; the module is incomplete. Reinstall CalicoBpf.", path);
        }

        Assembly adapters = LoadFromAssemblyPath(path);
        Type type = adapters.GetType(typeName, throwOnError: true)!;
        return (T)Activator.CreateInstance(type)!;
    }
}
