using System.Text;
using CalicoBpf.TestCluster;

namespace CalicoBpf.Fuzz;

/// <summary>
/// The fuzz targets of the test cluster's own readers, and the runner's list of every target. They
/// are an assembly of their own so that what replays the engine's targets (CalicoBpf.Core.Tests)
/// never depends on the test cluster (CalicoBpf.TestCluster.Tests replays these), and so that the
/// test cluster's assembly, which the fuzzer instruments, holds no harness code: instrumented code
/// must not run before SharpFuzz has set up its shared memory, and the runner reads this list first.
/// As in <see cref="Targets"/>, the exceptions promised for bad input are swallowed; anything else
/// escapes and is a finding.
/// </summary>
public static class ClusterTargets
{
    /// <summary>Every target the runner knows: the engine's and the simulator's (<see cref="Targets.All"/>), then the test cluster's.</summary>
    public static readonly IReadOnlyDictionary<string, Action<byte[]>> EveryTarget = new Dictionary<string, Action<byte[]>>(Targets.All, StringComparer.Ordinal)
    {
        ["cluster-scenario"] = ClusterScenarioText,
        ["kube-protobuf"] = KubeProtobufBody,
    };

    /// <summary>The test cluster's targets alone: what this assembly adds to <see cref="Targets.All"/>.</summary>
    public static IEnumerable<string> Own => EveryTarget.Keys.Except(Targets.All.Keys);

    /// <summary>Kinds by the scenario fields they depend on: reading the CRD fixtures once, not per input.</summary>
    private static readonly Dictionary<string, List<ResourceKind>> KindsByInstall = new(StringComparer.Ordinal);

    /// <summary>
    /// The test cluster's scenario file: parsed, validated, and seeded into a resource store as the
    /// test cluster does before it serves. Bad input is a FormatException (YAML, with line and column)
    /// or an InvalidDataException naming the entry and field. RBAC manifests are files the scenario
    /// names, not part of its text, and are not read.
    /// </summary>
    private static void ClusterScenarioText(byte[] input)
    {
        try
        {
            ClusterScenario scenario = ClusterScenario.Parse(Encoding.UTF8.GetString(input));
            scenario.RbacManifests.Clear();
            string key = $"{scenario.Install}|{scenario.CalicoCrds}|{string.Join(",", scenario.CalicoApiGroups)}";
            if (!KindsByInstall.TryGetValue(key, out List<ResourceKind>? kinds))
            {
                KindsByInstall[key] = kinds = ScenarioObjects.Kinds(scenario);
            }

            var store = new ResourceStore();
            ScenarioObjects.Seed(scenario, kinds, store);
            _ = store.List(ScenarioObjects.Pods, null).Count;
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException)
        {
            // The promised outcome of a scenario the cluster cannot serve: what is wrong, and where.
        }
    }

    /// <summary>
    /// A request body in Kubernetes' protobuf encoding, as the test cluster reads kubectl's access and
    /// rules reviews: a review as JSON, a FormatException naming the fault, or NotSupportedException
    /// for a kind it does not decode (the server's 415).
    /// </summary>
    private static void KubeProtobufBody(byte[] input)
    {
        try
        {
            _ = KubeProtobuf.Decode(input).ToJsonString();
        }
        catch (Exception ex) when (ex is FormatException or NotSupportedException)
        {
            // The promised outcomes: 400 and 415.
        }
    }
}
