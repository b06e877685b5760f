using System.Text;

namespace CalicoBpf.Tests;

/// <summary>bpftool's JSON dump format (reference section 5), fed in every chunking.</summary>
public class BpftoolJsonTests
{
    /// <summary>A stream that hands out at most a few bytes per read, to exercise every refill point.</summary>
    private sealed class Trickle : MemoryStream
    {
        private readonly int _chunk;

        public Trickle(byte[] data, int chunk)
            : base(data) => _chunk = chunk;

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, _chunk));
    }

    private static List<(byte[] Key, byte[] Value)> Parse(string json, BpfMapDescriptor map, int cpus, int chunk)
    {
        var reader = new BpftoolJsonReader(new Trickle(Encoding.UTF8.GetBytes(json), chunk), map, cpus, "test");
        var result = new List<(byte[], byte[])>();
        foreach (RawEntryBatch b in reader.ReadBatches(2, CancellationToken.None))
        {
            for (int i = 0; i < b.Count; i++)
            {
                result.Add((b.Key(i).ToArray(), b.Value(i).ToArray()));
            }
        }

        return result;
    }

    private static readonly BpfMapDescriptor Hash = new(1, BpfMapType.Hash, 2, 3, 10, 0, "cali_t");
    private static readonly BpfMapDescriptor PerCpu = new(2, BpfMapType.PerCpuHash, 2, 4, 10, 0, "cali_p");

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(4096)]
    public void Entries_formatted_sections_and_vanished_entries(int chunk)
    {
        string json = """
            [{"key":["0x01","0x02"],"value":["0x0a","0x0b","0x0c"],"formatted":{"key":{"a":1,"":[1,2]},"value":{"x":"0x1","":{"":3}}}},
             {"key":["0x03","0x04"],"value":{"error":"No such file or directory"}},
             {"key":["0xff","0xFE"],"value":["0x00","0x7f","0x80"]},
             {"key":["0x05","0x06"],"value":["0x01","0x02","0x03"]}]

            """;
        var entries = Parse(json, Hash, 1, chunk);
        Assert.Equal(3, entries.Count);
        Assert.Equal(new byte[] { 1, 2 }, entries[0].Key);
        Assert.Equal(new byte[] { 10, 11, 12 }, entries[0].Value);
        Assert.Equal(new byte[] { 0xff, 0xfe }, entries[1].Key);
        Assert.Equal(new byte[] { 0, 0x7f, 0x80 }, entries[1].Value);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public void Compact_entries_read_at_fixed_offsets_equal_the_tokenized_reading(int chunk)
    {
        // bpftool -j prints entries without spaces (read at fixed offsets); bpftool -p, or any other
        // spacing, goes through Utf8JsonReader. Both readings of the same entries must be the same bytes.
        var random = new Random(19);
        var entries = Enumerable.Range(0, 300).Select(_ => (Key: RandomBytes(random, 2), Value: RandomBytes(random, 3))).ToList();
        static string Bytes(byte[] b, string separator) => string.Join(separator, b.Select((x, i) => i % 2 == 0 ? $"\"0x{x:x2}\"" : $"\"0x{x:X2}\""));
        string compact = "[" + string.Join(",", entries.Select(e => $$"""{"key":[{{Bytes(e.Key, ",")}}],"value":[{{Bytes(e.Value, ",")}}]}""")) + "]";
        string spaced = "[\n" + string.Join(",\n", entries.Select(e => $$"""  { "key": [{{Bytes(e.Key, ", ")}}], "value": [{{Bytes(e.Value, ", ")}}] }""")) + "\n]\n";
        // Every other entry spaced: the two readings alternate within one stream.
        string mixed = "[" + string.Join(",", entries.Select((e, i) => i % 2 == 0
            ? $$"""{"key":[{{Bytes(e.Key, ",")}}],"value":[{{Bytes(e.Value, ",")}}]}"""
            : $$"""{"key": [{{Bytes(e.Key, ",")}}],"value":[{{Bytes(e.Value, ",")}}]}""")) + "]";

        foreach (string json in new[] { compact, spaced, mixed })
        {
            var parsed = Parse(json, Hash, 1, chunk);
            Assert.Equal(entries.Select(e => Convert.ToHexString(e.Key) + Convert.ToHexString(e.Value)), parsed.Select(e => Convert.ToHexString(e.Key) + Convert.ToHexString(e.Value)));
        }
    }

    private static byte[] RandomBytes(Random random, int n)
    {
        byte[] b = new byte[n];
        random.NextBytes(b);
        return b;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(4096)]
    public void Per_cpu_values_land_in_rounded_slots(int chunk)
    {
        string json = """[{"key":["0x01","0x00"],"values":[{"cpu":0,"value":["0x01","0x00","0x00","0x00"]},{"cpu":1,"value":["0x02","0x00","0x00","0x00"]},{"cpu":2,"value":["0x03","0x00","0x00","0x00"]}]}]""";
        var e = Assert.Single(Parse(json, PerCpu, 3, chunk));
        Assert.Equal(24, e.Value.Length); // 3 CPUs x 8-byte slots
        Assert.Equal((1, 2, 3), (e.Value[0], e.Value[8], e.Value[16]));
    }

    [Fact]
    public void Empty_map_and_command_errors()
    {
        Assert.Empty(Parse("[]\n", Hash, 1, 1));
        var missing = Assert.Throws<BpfObjectNotFoundException>(() => Parse("""{"error":"bpf obj get (/sys/fs/bpf/tc/globals/cali_v4_ct4): No such file or directory"}""", Hash, 1, 3));
        Assert.Contains("No such file", missing.Message);
        Assert.Throws<BpfPermissionDeniedException>(() => Parse("""{"error":"can't get next key: Operation not permitted"}""", Hash, 1, 4096));
    }

    [Theory]
    [InlineData("""[{"key":["0x01","0x02"],"value":["0x0a","0x0b"]}]""", "has 2 bytes")]
    [InlineData("""[{"key":["0x01","0x02","0x03"],"value":["0x0a","0x0b","0x0c"]}]""", "more than")]
    [InlineData("""[{"key":["0x1","0x02"],"value":["0x0a","0x0b","0x0c"]}]""", "not 0x followed")]
    [InlineData("""[{"key":["0x01","0x0g"],"value":["0x0a","0x0b","0x0c"]}]""", "non-hex")]
    [InlineData("""[{"key":["0x01","0x02"]}]""", "has no value")]
    [InlineData("""[{"key":["0x01","0x02"],"value":["0x0a",""", "ended in the middle")]
    [InlineData("""42""", "not a JSON array")]
    [InlineData("""[{"key":["0x01","0x02"],"value":["0x0a","0x0b","0x0c"]} {"key":["0x01","0x02"],"value":["0x0a","0x0b","0x0c"]}]""", "where a comma")]
    [InlineData("""[{"key":["0x01","0x02"],"value":["0x0a","0x0b","0x0c"]},]""", "where an entry should be")]
    [InlineData("""[{"key":["0x01","0x02"],"value":["0x0a","0x0b","0x0c"]}""", "ended in the middle")]
    public void Bad_input_is_a_clear_error(string json, string expected)
    {
        var ex = Assert.ThrowsAny<BpfException>(() => Parse(json, Hash, 1, 4));
        Assert.Contains(expected, ex.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100_000)]
    public void Line_sections_give_headers_as_text_and_huge_lines_as_streams(int chunk)
    {
        // Two dumps of bpftool -j, the second bigger than the 64 KiB read buffer, as the bulk count writes them.
        string big = "[" + string.Join(",", Enumerable.Range(0, 9000).Select(i => $$"""{"key":["0x{{i % 256:x2}}","0x{{i / 256:x2}}"],"value":["0x01","0x02","0x03"]}""")) + "]";
        string text = "@@map /a\n[]\n\n@@map /b\n" + big + "\n\n";
        var lines = new LineSections(new Trickle(Encoding.UTF8.GetBytes(text), chunk));

        Assert.Equal("@@map /a", lines.ReadLine());
        using (Stream a = lines.OpenLine())
        {
            Assert.Empty(new BpftoolJsonReader(a, Hash, 1, "/a").ReadBatches(4096, CancellationToken.None).SelectMany(b => Enumerable.Range(0, b.Count)));
        }

        Assert.Equal("@@map /b", lines.ReadLine());
        long count = 0;
        using (Stream b = lines.OpenLine())
        {
            foreach (RawEntryBatch batch in new BpftoolJsonReader(b, Hash, 1, "/b").ReadBatches(4096, CancellationToken.None))
            {
                count += batch.Count;
            }
        }

        Assert.Equal(9000, count);
        Assert.Null(lines.ReadLine());
    }

    [Theory]
    [InlineData(7)]
    [InlineData(100_000)]
    public void A_batch_grows_to_its_size_keeping_the_entries_it_holds(int chunk)
    {
        // The batch starts small (a counters map's few entries) and grows while entries come: every entry,
        // in order, and full batches of the size asked for once the dump is long enough.
        string json = "[" + string.Join(",", Enumerable.Range(0, 9000).Select(i => $$"""{"key":["0x{{i % 256:x2}}","0x{{i / 256:x2}}"],"value":["0x{{i % 251:x2}}","0x02","0x{{i / 251:x2}}"]}""")) + "]";
        var reader = new BpftoolJsonReader(new Trickle(Encoding.UTF8.GetBytes(json), chunk), Hash, 1, "test");
        var sizes = new List<int>();
        int n = 0;
        foreach (RawEntryBatch b in reader.ReadBatches(4096, CancellationToken.None))
        {
            sizes.Add(b.Count);
            for (int i = 0; i < b.Count; i++, n++)
            {
                Assert.Equal(new[] { (byte)(n % 256), (byte)(n / 256) }, b.Key(i).ToArray());
                Assert.Equal(new[] { (byte)(n % 251), (byte)2, (byte)(n / 251) }, b.Value(i).ToArray());
            }
        }

        Assert.Equal(new[] { 4096, 4096, 808 }, sizes);
    }

    [Fact]
    public void A_line_stream_left_unread_is_skipped_when_disposed()
    {
        var lines = new LineSections(new MemoryStream(Encoding.UTF8.GetBytes("first\n" + new string('x', 200_000) + "\nlast")));
        Assert.Equal("first", lines.ReadLine());
        using (Stream skipped = lines.OpenLine())
        {
            Assert.Equal((int)'x', skipped.ReadByte());
        }

        Assert.Equal("last", lines.ReadLine());
        Assert.Null(lines.ReadLine());
    }
}
