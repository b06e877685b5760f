using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// A map read back from a bundle's entries file (key then value, each entry the same size, as the
/// node's transport delivered them), in batches like the live transports', so the same decoders read it.
/// </summary>
internal sealed class StoredMapReader : IMapReader
{
    /// <summary>
    /// Entries a batch holds: a quarter of the kernel reads' 4,096 (no syscall to save here), so 32
    /// nodes read at once hold 3.4 MB of batches, not 13.6 MB (conntrack's 104-byte entries).
    /// </summary>
    private const int BatchSize = 1024;

    /// <summary>About what one read of the entries file takes (under the large object heap's 85,000 bytes).</summary>
    private const int ScratchBytes = 64 * 1024;
    private readonly MapFact _fact;
    private readonly Func<Stream> _open;
    private readonly string _what;

    /// <param name="what">The entries file, named for an error ("cali_v4_ct4's entries of node-1 in /tmp/b.zip").</param>
    public StoredMapReader(MapFact fact, Func<Stream> open, string what)
    {
        _fact = fact;
        _open = open;
        _what = what;
    }

    public BpfMapDescriptor Descriptor => _fact.Descriptor!;

    public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken)
    {
        long left = _fact.Entries ?? 0;
        if (left == 0)
        {
            yield break;
        }

        BpfMapDescriptor d = Descriptor;
        int keySize = d.KeySize, stride = _fact.ValueStride, entrySize = keySize + stride;
        var batch = new RawEntryBatch(keySize, d.ValueSize, stride, _fact.Cpus, _fact.PerCpu, (int)Math.Min(left, BatchSize));
        // The entries file is read a run of whole entries at a time and split into keys and values: a
        // read of each key and each value went through the decompressor once per 16 bytes.
        byte[] run = new byte[Math.Max(1, ScratchBytes / entrySize) * entrySize];
        int perRun = run.Length / entrySize;
        using Stream s = _open();
        while (left > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int n = (int)Math.Min(left, batch.Capacity);
            for (int first = 0; first < n; first += perRun)
            {
                int m = Math.Min(perRun, n - first);
                Fill(s, run.AsSpan(0, m * entrySize));
                for (int i = 0; i < m; i++)
                {
                    ReadOnlySpan<byte> e = run.AsSpan(i * entrySize, entrySize);
                    e[..keySize].CopyTo(batch.Keys.AsSpan((first + i) * keySize));
                    e[keySize..].CopyTo(batch.Values.AsSpan((first + i) * stride));
                }
            }

            batch.Count = n;
            left -= n;
            yield return batch;
        }
    }

    /// <summary>Reads a run of entries; a file that ends early or does not decompress is a <see cref="BundleException"/> naming it.</summary>
    private void Fill(Stream s, Span<byte> run)
    {
        try
        {
            s.ReadExactly(run);
        }
        catch (EndOfStreamException ex)
        {
            throw new BundleException($"{_what} end before the {_fact.Entries} entries the bundle recorded: the bundle was cut short or damaged. Make it again with Export-CalicoBpfDiagnostic.", ex);
        }
        catch (InvalidDataException ex)
        {
            throw new BundleException($"{_what} cannot be decompressed ({ex.Message}): the bundle is damaged. Make it again with Export-CalicoBpfDiagnostic.", ex);
        }
    }

    public long? CountEntries(CancellationToken cancellationToken) =>
        !_fact.Countable ? null : Descriptor.Type.IsArray() ? Descriptor.MaxEntries : _fact.Entries;

    public void Dispose()
    {
    }
}
