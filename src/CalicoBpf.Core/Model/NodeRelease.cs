namespace CalicoBpf;

/// <summary>The Calico release a node's maps are decoded with, and how it was found.</summary>
public sealed record NodeRelease(CalicoRelease Release, CalicoReleaseSource Source, string Detail)
{
    /// <summary>True when the release is exact (given or from the image), not inferred.</summary>
    public bool Exact => Source is CalicoReleaseSource.Given or CalicoReleaseSource.Image;

    /// <summary>Inferred from the pins: the oldest release they allow (Release is the newest); null otherwise.</summary>
    public CalicoRelease? Earliest { get; init; }

    /// <summary>The pins could not be listed for want of root: the reader's own NotRoot error says so, no warning is due.</summary>
    internal bool ListingNeedsRoot { get; init; }

    public static NodeRelease Given(CalicoRelease release) => new(release, CalicoReleaseSource.Given, "given with -CalicoVersion");

    /// <summary>The release an image's tag names (calico/node:v3.30.7, or the tag alone); null when it names none (a digest, "master").</summary>
    public static NodeRelease? FromImage(string? image) => CalicoRelease.TryParse(image, out CalicoRelease r)
        ? new NodeRelease(r, CalicoReleaseSource.Image, $"from the calico-node image {image}")
        : null;

    public override string ToString() => $"{Release} ({Detail})";
}
