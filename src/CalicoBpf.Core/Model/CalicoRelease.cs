using System.Globalization;
using System.Text.RegularExpressions;

namespace CalicoBpf;

/// <summary>
/// A Calico release (v3.30.7, or a development build such as v3.34.0-0.dev). The same map version
/// means different things in different releases, so decoders take one of these.
/// </summary>
public sealed partial record CalicoRelease(int Major, int Minor, int Patch, string PreRelease = "") : IComparable<CalicoRelease>
{
    /// <summary>The newest release whose rules CalicoBpf knows: the development line after v3.33 (Calico commit 87c15906f20c).</summary>
    public static readonly CalicoRelease Newest = new(3, 34, 0, "0.dev");

    /// <summary>The oldest release CalicoBpf decodes (conntrack version 2).</summary>
    public static readonly CalicoRelease Oldest = new(3, 23, 0);

    /// <summary>A development build (a pre-release tag): it carries the rules of the release it leads to.</summary>
    public bool IsDevelopment => PreRelease.Length > 0;

    /// <summary>v3.30, the line a release belongs to.</summary>
    public string Line => string.Create(CultureInfo.InvariantCulture, $"v{Major}.{Minor}");

    /// <summary>
    /// Reads a release from its tag or from an image reference: "v3.30.7", "3.30", "v3.34.0-0.dev",
    /// "quay.io/calico/node:v3.30.7", "docker.io/calico/node:v3.31.2@sha256:...".
    /// </summary>
    public static bool TryParse(string? text, out CalicoRelease release)
    {
        release = Newest;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        // An image reference: the tag after the last ':' of the last path segment, before any digest.
        string s = text.Trim();
        int at = s.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            s = s[..at];
        }

        int slash = s.LastIndexOf('/');
        int colon = s.LastIndexOf(':');
        if (colon > slash)
        {
            s = s[(colon + 1)..];
        }

        Match m = VersionPattern().Match(s);
        if (!m.Success)
        {
            return false;
        }

        release = new CalicoRelease(
            int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
            int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
            m.Groups[3].Success ? int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) : 0,
            m.Groups[4].Success ? m.Groups[4].Value : string.Empty);
        return true;
    }

    public static CalicoRelease Parse(string text) => TryParse(text, out CalicoRelease r)
        ? r
        : throw new FormatException($"\"{text}\" is not a Calico release; give one as v3.30.7 (or 3.30, or an image such as calico/node:v3.30.7).");

    /// <summary>True when this release is <paramref name="other"/> or newer (a development build counts as the release it leads to).</summary>
    public bool AtLeast(CalicoRelease other) => CompareTo(other) >= 0;

    public bool AtLeast(int major, int minor, int patch = 0) => AtLeast(new CalicoRelease(major, minor, patch));

    public int CompareTo(CalicoRelease? other)
    {
        if (other is null)
        {
            return 1;
        }

        // A development build has the rules of the release it leads to, so only the numbers count.
        return (Major, Minor, Patch).CompareTo((other.Major, other.Minor, other.Patch));
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"v{Major}.{Minor}.{Patch}{(IsDevelopment ? "-" + PreRelease : string.Empty)}");

    [GeneratedRegex(@"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$", RegexOptions.CultureInvariant)]
    private static partial Regex VersionPattern();
}

/// <summary>How the release of a node was told, shown with -Verbose and on Get-BpfMap and Get-CalicoNode.</summary>
public enum CalicoReleaseSource
{
    /// <summary>-CalicoVersion.</summary>
    Given,
    /// <summary>The calico-node container's image tag.</summary>
    Image,
    /// <summary>The map versions pinned on the node: a range of releases; the newest of it is used.</summary>
    PinnedMaps,
    /// <summary>Nothing told it: the newest rules CalicoBpf knows are used.</summary>
    Unknown,
}

/// <summary>The Calico release a node's maps are decoded with, and how it was found.</summary>
public sealed record NodeRelease(CalicoRelease Release, CalicoReleaseSource Source, string Detail)
{
    /// <summary>True when the release is exact (given or from the image), not inferred.</summary>
    public bool Exact => Source is CalicoReleaseSource.Given or CalicoReleaseSource.Image;

    /// <summary>Inferred from the pins: the oldest release they allow (Release is the newest); null otherwise.</summary>
    public CalicoRelease? Earliest { get; init; }

    public static NodeRelease Given(CalicoRelease release) => new(release, CalicoReleaseSource.Given, "given with -CalicoVersion");

    /// <summary>The release an image's tag names (calico/node:v3.30.7, or the tag alone); null when it names none (a digest, "master").</summary>
    public static NodeRelease? FromImage(string? image) => CalicoRelease.TryParse(image, out CalicoRelease r)
        ? new NodeRelease(r, CalicoReleaseSource.Image, $"from the calico-node image {image}")
        : null;

    public override string ToString() => $"{Release} ({Detail})";
}
