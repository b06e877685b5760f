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

    /// <summary>
    /// The simulator writes what Calico writes: every conntrack entry Calico's programs wrote, decoded
    /// and encoded again by the encoder the simulator and the demo use, gives Calico's bytes back, byte
    /// for byte (no B-A or flags on NAT forward entries, the opener bit, offset 0 as the release has it,
    /// the client's own original source on NAT reverse entries).
    /// </summary>
    [Theory]
    [MemberData(nameof(Releases))]
    public void The_simulators_encoder_writes_the_bytes_Calico_wrote(string release)
    {
        var node = new RealCalicoCapturedNode(RealCalicoPaths.Fixture(release));
        CalicoMapName pin = Maps.ConntrackReader.FindMap(node, ipv6: false);
        using Transport.IMapReader reader = node.OpenMap(pin.PinName);
        var layout = Maps.ConntrackLayout.For(pin.PinName, pin.Version, reader.Descriptor.KeySize, reader.Descriptor.ValueSize);
        CalicoRelease decodedAs = Maps.ReleaseInference.Of(node).Release;
        var codec = new Maps.ConntrackCodec(layout, node.Node, pin.PinName, node.SampleClock(), decodedAs);
        var differences = new List<string>();
        int entries = 0;
        foreach (Interop.RawEntryBatch batch in reader.ReadEntries(default))
        {
            for (int i = 0; i < batch.Count; i++)
            {
                byte[] key = batch.Key(i).ToArray();
                byte[] value = batch.Value(i).ToArray();
                ConntrackEntry e = codec.Decode(key, value);
                byte[] key2 = new byte[layout.KeySize];
                byte[] value2 = new byte[layout.ValueSize];
                Maps.ConntrackCodec.Encode(layout, e, key2, value2, decodedAs);
                entries++;
                if (!key.AsSpan().SequenceEqual(key2) || !value.AsSpan().SequenceEqual(value2))
                {
                    differences.Add($"{e}: Calico {Convert.ToHexString(key)} {Convert.ToHexString(value)}, encoder {Convert.ToHexString(key2)} {Convert.ToHexString(value2)}");
                }
            }
        }

        Assert.True(entries >= 10, $"only {entries} conntrack entries in the capture");
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }

    public static TheoryData<string> Releases() => new(RealCalicoPaths.CapturedReleases());

    [Fact]
    public void Both_releases_are_captured()
    {
        // The theory above has no case for a release whose folder is missing; this says so.
        Assert.Equal(new[] { "87c15906f20c", "v3.30.7" }, RealCalicoPaths.CapturedReleases());
    }
}
