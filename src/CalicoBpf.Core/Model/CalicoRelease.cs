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
