using System.IO.Compression;

namespace CalicoBpf.Bundles;

/// <summary>
/// Writes a bundle: entries go to files in a work directory beside the destination as they are
/// produced (gzip streams, from many node threads at once), within one size bound shared by them
/// all; <see cref="Complete"/> then puts them in one zip, written to a temporary name and moved into
/// place, so a bundle that fails half-way leaves no partial zip and nothing sits in memory.
/// </summary>
public sealed class BundleWriter : IDisposable
{
    private readonly string _destination;
    private readonly string _work;
    private readonly long _maxSize;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _entries = new(StringComparer.Ordinal);
    private long _used;

    /// <param name="destination">The zip to write (replaced when complete).</param>
    /// <param name="maxSize">Bytes the entries may take as stored (compressed).</param>
    public BundleWriter(string destination, long maxSize)
    {
        _destination = Path.GetFullPath(destination);
        _maxSize = maxSize;
        string dir = Path.GetDirectoryName(_destination) ?? ".";
        if (!Directory.Exists(dir))
        {
            throw new DirectoryNotFoundException($"The directory of {_destination} does not exist: create it, or give -Path in one that does.");
        }

        _work = Path.Combine(dir, "." + Path.GetFileName(_destination) + ".parts-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_work);
    }

    public long MaxSize => _maxSize;

    /// <summary>The zip's full path.</summary>
    public string Destination => _destination;

    /// <summary>Bytes stored so far.</summary>
    public long Used => Interlocked.Read(ref _used);

    /// <summary>
    /// A new gzip entry. Writing past the size bound throws <see cref="BundleFullException"/>; the
    /// caller then <see cref="Discard"/>s the entry, and its bytes count no more.
    /// </summary>
    /// <param name="entry">The entry's name in the zip.</param>
    /// <param name="facts">A facts file (what -Bundle needs to read a node at all): it may use the share of the
    /// bound kept for facts (<see cref="FactsReserve"/>), which map entries, logs and typed JSON may not.</param>
    public Stream CreateGzip(string entry, bool facts = false)
    {
        var file = new CountingStream(new FileStream(PathOf(entry), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16), this, entry, facts ? _maxSize : _maxSize - FactsReserve);
        // Writers give a map's entries a key and a value at a time: gathered here, deflate sees 64 KiB runs
        // (one call into zlib for a thousand entries, not two for each). Flush still reaches gzip (a sync point):
        // write lines through a buffer of your own rather than flushing each (DiagnosticExport.WriteFamily).
        return new BufferedStream(new GZipStream(file, CompressionLevel.Fastest), 1 << 16);
    }

    /// <summary>The share of the bound only facts files may use: a quarter of it, at most 256 MB.</summary>
    public long FactsReserve => Math.Min(_maxSize / 4, 256L << 20);

    /// <summary>Reads back a gzip entry written before (complete), while the bundle is still being made.</summary>
    public Stream OpenGzip(string entry) =>
        new GZipStream(new FileStream(PathOf(entry), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), CompressionMode.Decompress);

    /// <summary>Writes one small JSON entry (gzip) within the bound.</summary>
    public void WriteJson<T>(string entry, T value)
    {
        using Stream s = CreateGzip(entry, facts: true);
        JsonSerializer.Serialize(s, value, BundleFormat.Json);
    }

    /// <summary>Removes an entry written in part (over the bound, or failed).</summary>
    public void Discard(string entry)
    {
        if (_entries.TryRemove(entry, out long bytes))
        {
            Interlocked.Add(ref _used, -bytes);
        }

        File.Delete(PathOf(entry));
    }

    /// <summary>Removes every entry under a prefix (a node whose facts did not fit: its entries cannot be read without them).</summary>
    public void DiscardUnder(string prefix)
    {
        foreach (string entry in _entries.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
        {
            Discard(entry);
        }
    }

    /// <summary>Bytes stored under a prefix (a node's directory).</summary>
    public long BytesUnder(string prefix) => _entries.Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal)).Sum(e => e.Value);

    /// <summary>
    /// Writes the zip: the manifest and <paramref name="plainEntries"/> first (deflated), then every
    /// gzip entry as it is (stored), in name order. Returns the zip's size.
    /// </summary>
    public long Complete(BundleManifest manifest, IReadOnlyDictionary<string, object> plainEntries, CancellationToken cancellationToken)
    {
        string partial = _destination + ".partial";
        using (var zipFile = new FileStream(partial, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        using (var zip = new ZipArchive(zipFile, ZipArchiveMode.Create))
        {
            void Plain(string name, object value)
            {
                using Stream s = zip.CreateEntry(name, CompressionLevel.Optimal).Open();
                JsonSerializer.Serialize(s, value, value.GetType(), BundleFormat.IndentedJson);
            }

            Plain(BundleFormat.Manifest, manifest);
            foreach ((string name, object value) in plainEntries.OrderBy(e => e.Key, StringComparer.Ordinal))
            {
                Plain(name, value);
            }

            foreach (string name in _entries.Keys.OrderBy(n => n, StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                using Stream s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                using var f = new FileStream(PathOf(name), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                f.CopyTo(s);
            }
        }

        File.Move(partial, _destination, overwrite: true);
        return new FileInfo(_destination).Length;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_work, recursive: true);
            File.Delete(_destination + ".partial");
        }
        catch (IOException)
        {
        }
    }

    private string PathOf(string entry)
    {
        string path = Path.Combine(_work, entry.Replace('/', Path.DirectorySeparatorChar));
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        return path;
    }

    private void Count(string entry, int bytes, long limit)
    {
        if (Interlocked.Add(ref _used, bytes) > limit)
        {
            Interlocked.Add(ref _used, -bytes);
            throw new BundleFullException(_maxSize);
        }

        _entries.AddOrUpdate(entry, bytes, (_, b) => b + bytes);
    }

    /// <summary>The file under a gzip stream: counts what reaches the disk against the bound.</summary>
    private sealed class CountingStream : Stream
    {
        private readonly Stream _inner;
        private readonly BundleWriter _writer;
        private readonly string _entry;
        private readonly long _limit;

        public CountingStream(Stream inner, BundleWriter writer, string entry, long limit)
        {
            _inner = inner;
            _writer = writer;
            _entry = entry;
            _limit = limit;
            _writer._entries.TryAdd(entry, 0);
        }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => _inner.Length;

        public override long Position { get => _inner.Position; set => throw new NotSupportedException(); }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _writer.Count(_entry, buffer.Length, _limit);
            _inner.Write(buffer);
        }

        public override void Flush() => _inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>An entry would take the bundle past its size bound.</summary>
public sealed class BundleFullException : IOException
{
    public BundleFullException(long maxSize)
        : base($"The bundle reached its size bound of {maxSize} bytes (-MaxSize).")
    {
    }
}
