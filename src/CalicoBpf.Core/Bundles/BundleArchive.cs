using System.IO.Compression;

namespace CalicoBpf.Bundles;

/// <summary>
/// A bundle opened for reading: its manifest checked, its entries streamed (gzip entries are read
/// through a decompressing stream, nothing is unpacked to disk). One handle is read by one thread at
/// a time; <see cref="Reopen"/> gives another thread its own.
/// </summary>
public sealed class BundleArchive : IDisposable
{
    private readonly FileStream _file;
    private readonly ZipArchive _zip;

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

        var file = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
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

    /// <summary>A handle of its own on the same bundle, for another thread.</summary>
    public BundleArchive Reopen() => Open(Path);

    public bool Has(string entry) => _zip.GetEntry(entry) is not null;

    /// <summary>A gzip entry, decompressed as it is read.</summary>
    public Stream OpenGzip(string entry) => new GZipStream(Entry(entry).Open(), CompressionMode.Decompress);

    /// <summary>A gzip entry of JSON.</summary>
    public T ReadGzipJson<T>(string entry)
    {
        using Stream s = OpenGzip(entry);
        return JsonSerializer.Deserialize<T>(s, BundleFormat.Json) ?? throw Damaged(entry, null);
    }

    /// <summary>A plain (deflated) entry of JSON.</summary>
    public T ReadJson<T>(string entry)
    {
        using Stream s = Entry(entry).Open();
        return JsonSerializer.Deserialize<T>(s, BundleFormat.Json) ?? throw Damaged(entry, null);
    }

    public void Dispose()
    {
        _zip.Dispose();
        _file.Dispose();
    }

    private ZipArchiveEntry Entry(string entry) => _zip.GetEntry(entry) ?? throw Damaged(entry, null);

    private BundleException Damaged(string entry, Exception? inner) =>
        new($"{Path} has no readable {entry}: the bundle is damaged or was cut short. Make it again with Export-CalicoBpfDiagnostic.", inner);
}
