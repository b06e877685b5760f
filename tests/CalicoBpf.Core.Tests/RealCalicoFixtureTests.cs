using CalicoBpf.Tests.Support;
using Xunit;

namespace CalicoBpf.Tests;

/// <summary>
/// Maps written by Calico's own tc programs (tests/fixtures/realcalico, see its README), decoded
/// through the module's remote path: bpftool's JSON into <see cref="Transport.BpftoolJsonReader"/>,
/// then the readers every cmdlet uses. Each check of <see cref="RealCalicoExpectations"/> is one
/// case per captured release.
/// </summary>
public class RealCalicoFixtureTests
{
    public static TheoryData<string, string> Checks()
    {
        var data = new TheoryData<string, string>();
        foreach (string release in RealCalicoPaths.CapturedReleases())
        {
            foreach ((string name, _) in RealCalicoExpectations.All)
            {
                data.Add(release, name);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Checks))]
    public void Calicos_bytes_read_as_what_was_sent(string release, string check)
    {
        string dir = RealCalicoPaths.Fixture(release);
        RealCalicoRecord sent = RealCalicoRecord.Load(dir);
        Assert.Equal(release, sent.Release);
        var node = new RealCalicoCapturedNode(dir);
        RealCalicoExpectations.Named(check)(new RealCalicoExpectations.Source(release, node, sent, node.ReadTraceLines(false, null, default).ToList()));
    }

    [Fact]
    public void Both_releases_are_captured()
    {
        // The theory above has no case for a release whose folder is missing; this says so.
        Assert.Equal(new[] { "87c15906f20c", "v3.30.7" }, RealCalicoPaths.CapturedReleases());
    }
}
