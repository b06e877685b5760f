using CalicoBpf.Fuzz;

namespace CalicoBpf.Tests;

/// <summary>
/// Every fuzz target of the engine and the simulator on its seed corpus and on every input that once
/// crashed it (tests/fuzz-regressions/TARGET): each must end in a typed error or a fallback, never an
/// unhandled exception. The test cluster's targets, and the checks of the corpus against every target
/// the runner knows, are in CalicoBpf.TestCluster.Tests (ClusterFuzzRegressionTests).
/// </summary>
public class FuzzRegressionTests
{
    public static IEnumerable<object[]> Inputs() => FuzzCorpus.Inputs(Targets.All.Keys);

    [Theory]
    [MemberData(nameof(Inputs))]
    public void Target_survives(string target, string input) => Targets.All[target](FuzzCorpus.Read(input));
}
