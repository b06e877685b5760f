using System.IO.Compression;

namespace CalicoBpf.Bundles;

/// <summary>
/// A bundle opened for reading: its manifest checked, its entries streamed (gzip entries are read
/// through a decompressing stream, nothing is unpacked to disk). One handle serves every node's
/// thread: the zip's directory is read once (about 18 KB a node's entries), and each entry's stream
/// takes the file under one lock for each read of its compressed bytes, which it finds again by its
/// own position (the zip's entry streams seek to it), while decompressing runs on the reader's thread.
/// </summary>
public sealed class BundleArchive : IDisposable
{
    private readonly FileStream _file;
    private readonly ZipArchive _zip;
    private readonly object _gate = new();

    private BundleArchive(string path, FileStream file, ZipArchive zip, BundleManifest manifest)
    {
        Path = path;
        _file = file;
        _zip = zip;
        Manifest = manifest;
    }

    /// <summary>The bundle's full path.</summary>
    public string Path { get; }

    public BundleManifest Manifest { get; }

    /// <summary>Opens a bundle; a file that is not one, or one of a later format, is a <see cref="BundleException"/> that says so.</summary>
    public static BundleArchive Open(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new FileNotFoundException($"There is no bundle at {full}. Export-CalicoBpfDiagnostic makes one.", full);
        }

        // Reads of 4 KiB and more skip the buffer: the nodes' streams take turns at other positions,
        // so a larger buffer would be filled again for each read and mostly thrown away.
        var file = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
        try
        {
            ZipArchive zip;
            try
            {
                zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
            }
            catch (InvalidDataException ex)
            {
                throw new BundleException($"{full} is not a CalicoBpf bundle: it is not a zip file ({ex.Message}). Export-CalicoBpfDiagnostic makes one.", ex);
            }

            ZipArchiveEntry? m = zip.GetEntry(BundleFormat.Manifest);
            if (m is null)
            {
                zip.Dispose();
                throw new BundleException($"{full} is a zip file but not a CalicoBpf bundle: it has no {BundleFormat.Manifest}. Export-CalicoBpfDiagnostic makes one.");
            }

            BundleManifest manifest;
            try
            {
                using Stream s = m.Open();
                manifest = JsonSerializer.Deserialize<BundleManifest>(s, BundleFormat.Json) ?? throw new JsonException("an empty manifest");
            }
            catch (JsonException ex)
            {
                zip.Dispose();
                throw new BundleException($"The manifest of {full} cannot be read ({ex.Message}): the bundle is damaged. Make it again with Export-CalicoBpfDiagnostic.", ex);
            }

            if (manifest.Format != BundleFormat.Format)
            {
                zip.Dispose();
                throw new BundleException($"{full} is a bundle of format {manifest.Format} (made by CalicoBpf {manifest.ModuleVersion}); this module reads {BundleFormat.Format}. Read it with that module version or later.");
            }

            return new BundleArchive(full, file, zip, manifest);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public bool Has(string entry) => _zip.GetEntry(entry) is not null;

    /// <summary>A gzip entry, decompressed as it is read (on the caller's thread; safe beside other threads' entries).</summary>
    public Stream OpenGzip(string entry) => new GZipStream(OpenEntry(entry), CompressionMode.Decompress);

    /// <summary>A gzip entry of JSON.</summary>
    public T ReadGzipJson<T>(string entry)
    {
        using Stream s = OpenGzip(entry);
        return JsonSerializer.Deserialize<T>(s, BundleFormat.Json) ?? throw Damaged(entry, null);
    }

    /// <summary>A plain (deflated) entry of JSON.</summary>
    public T ReadJson<T>(string entry)
    {
        using Stream s = OpenEntry(entry);
        return JsonSerializer.Deserialize<T>(s, BundleFormat.Json) ?? throw Damaged(entry, null);
    }

    /// <summary>An entry's stream (decompressed where the zip deflated it), read under the archive's lock.</summary>
    private Stream OpenEntry(string entry)
    {
        ZipArchiveEntry e = Entry(entry);
        lock (_gate)
        {
            return new SharedEntryStream(e.Open(), _gate);
        }
    }

    public void Dispose()
    {
        _zip.Dispose();
        _file.Dispose();
    }

    private ZipArchiveEntry Entry(string entry) => _zip.GetEntry(entry) ?? throw Damaged(entry, null);

    private BundleException Damaged(string entry, Exception? inner) =>
        new($"{Path} has no readable {entry}: the bundle is damaged or was cut short. Make it again with Export-CalicoBpfDiagnostic.", inner);

    /// <summary>One entry's stream, each read under the lock every entry of the archive shares.</summary>
    private sealed class SharedEntryStream : Stream
    {
        private readonly Stream _inner;
        private readonly object _gate;

        public SharedEntryStream(Stream inner, object gate)
        {
            _inner = inner;
            _gate = gate;
        }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            lock (_gate)
            {
                return _inner.Read(buffer);
            }
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                lock (_gate)
                {
                    _inner.Dispose();
                }
            }

            base.Dispose(disposing);
        }
    }
}
