using CalicoBpf.Fuzz;
using Xunit;

namespace CalicoBpf.TestCluster.Tests;

/// <summary>
/// The test cluster's fuzz targets on their seed corpus and on every input that once crashed them
/// (the engine's are replayed by CalicoBpf.Core.Tests' FuzzRegressionTests); and, as only this
/// project sees every target the runner knows, the corpus checked against all of them.
/// </summary>
public class ClusterFuzzRegressionTests
{
    public static IEnumerable<object[]> Inputs() => FuzzCorpus.Inputs(ClusterTargets.Own);

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Target_survives(string target, string input) => ClusterTargets.EveryTarget[target](FuzzCorpus.Read(input));

    [Fact]
    public void Every_target_has_a_seed_corpus() => Assert.All(ClusterTargets.EveryTarget.Keys, t => Assert.NotEmpty(FuzzCorpus.Seeds(t)));

    [Fact]
    public void Every_folder_of_inputs_belongs_to_a_target() =>
        Assert.All(FuzzCorpus.TargetsWithInputs(), t => Assert.Contains(t, ClusterTargets.EveryTarget.Keys));
}
