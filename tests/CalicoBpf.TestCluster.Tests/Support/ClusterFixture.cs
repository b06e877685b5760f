using CalicoBpf.Interop;
using CalicoBpf.Tests.Support;

namespace CalicoBpf.TestCluster.Tests.Support;

/// <summary>
/// The test cluster of one scenario, started in this process once for the tests of a collection and
/// removed with everything it created when they are done, whether they passed or not.
/// </summary>
public abstract class ClusterFixture : IAsyncLifetime
{
    private readonly string _scenario;
    private TestClusterHost? _host;

    /// <param name="scenario">The scenario file, relative to the repository.</param>
    protected ClusterFixture(string scenario) => _scenario = scenario;

    /// <summary>The repository this test binary was built from (where CalicoBpf.psd1 is).</summary>
    public static string Repository { get; } = Above(AppContext.BaseDirectory);

    /// <summary>
    /// The running cluster. A test that needs it skips when this machine cannot run it (not Linux, not
    /// root); with CI=true it fails instead.
    /// </summary>
    public TestClusterHost Host
    {
        get
        {
            Kernel.Require();
            return _host ?? throw new InvalidOperationException("The test cluster did not start.");
        }
    }

    /// <summary>kubectl with the admin token's kubeconfig; a test that needs it also skips without kubectl.</summary>
    public Kubectl Kubectl => As(null);

    /// <summary>kubectl as another of the scenario's tokens (null: the admin token).</summary>
    public Kubectl As(string? token)
    {
        TestClusterHost host = Host;
        Kubectl.Require();
        return new Kubectl(token is null ? host.KubeconfigPath : host.WriteKubeconfig(token));
    }

    public async Task InitializeAsync()
    {
        if (KernelInfo.IsRoot)
        {
            _host = await TestClusterHost.StartAsync(Path.Combine(Repository, _scenario));
        }
    }

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
    }

    private static string Above(string dir) => File.Exists(Path.Combine(dir, "CalicoBpf.psd1")) ? dir
        : Above(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(dir)) ?? throw new DirectoryNotFoundException("CalicoBpf.psd1 is not above the test binaries."));
}

/// <summary>tests/Pester/resources.yaml: Kubernetes and Calico resources of both groups.</summary>
[CollectionDefinition(Name)]
public sealed class ResourcesCluster() : ClusterFixture("tests/Pester/resources.yaml"), ICollectionFixture<ResourcesCluster>
{
    public const string Name = "resources cluster";
}

/// <summary>tests/Pester/manifest-v328.yaml: a manifest install on Calico v3.28's CRDs.</summary>
[CollectionDefinition(Name)]
public sealed class ManifestV328Cluster() : ClusterFixture("tests/Pester/manifest-v328.yaml"), ICollectionFixture<ManifestV328Cluster>
{
    public const string Name = "manifest v3.28 cluster";
}

/// <summary>demo/cluster.yaml: three nodes with calico-node (v3.30.7) and one without.</summary>
[CollectionDefinition(Name)]
public sealed class DemoCluster() : ClusterFixture("demo/cluster.yaml"), ICollectionFixture<DemoCluster>
{
    public const string Name = "demo cluster";
}

/// <summary>tests/Pester/rbac.yaml: deploy/calicobpf-rbac.yaml's roles, a token for each, and one for an identity bound to nothing.</summary>
[CollectionDefinition(Name)]
public sealed class RbacCluster() : ClusterFixture("tests/Pester/rbac.yaml"), ICollectionFixture<RbacCluster>
{
    public const string Name = "rbac cluster";
}
