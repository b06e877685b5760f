using System.Reflection;
using System.Runtime.Loader;

namespace CalicoBpf;

/// <summary>
/// Assembly loading for the module. The engine (lib/CalicoBpf.Core.dll) loads into the default
/// context, so its types ([CalicoBpf.ConntrackEntry], [CalicoBpf.TcpState], ...) are visible to
/// PowerShell like any other. Third-party assemblies never load there: CalicoBpf.Core loads
/// CalicoBpf.Adapters and its dependencies (YamlDotNet, KubernetesClient) from lib/ into its
/// private context (CalicoBpf.Isolation.DependencyLoadContext), so another module's version of the
/// same library is never touched.
/// </summary>
public sealed class ModuleInitializer : IModuleAssemblyInitializer, IModuleAssemblyCleanup
{
    private const string EngineName = "CalicoBpf.Core";

    // The module layout keeps the engine in lib/; a build output folder keeps everything side by side.
    private static readonly string LibDirectory = Directory.Exists(Path.Combine(ModuleDirectory, "lib")) ? Path.Combine(ModuleDirectory, "lib") : ModuleDirectory;

    private static string ModuleDirectory => Path.GetDirectoryName(typeof(ModuleInitializer).Assembly.Location)!;

    public void OnImport()
    {
        AssemblyLoadContext.Default.Resolving += Resolve;

        // Load the engine now, so that its type names work in scripts right after Import-Module.
        AssemblyLoadContext.Default.LoadFromAssemblyName(new AssemblyName(EngineName));

        // ConvertTo-Json writes the engine's enums by name (Formats/JsonEnumNames.cs).
        Formats.JsonEnumNames.Install();
    }

    public void OnRemove(PSModuleInfo psModuleInfo)
    {
        Formats.JsonEnumNames.Remove();
        AssemblyLoadContext.Default.Resolving -= Resolve;
    }

    private static Assembly? Resolve(AssemblyLoadContext context, AssemblyName name)
    {
        if (name.Name != EngineName)
        {
            return null;
        }

        string path = Path.Combine(LibDirectory, EngineName + ".dll");
        return File.Exists(path) ? context.LoadFromAssemblyPath(path) : null;
    }
}
