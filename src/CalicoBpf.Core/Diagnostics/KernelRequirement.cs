namespace CalicoBpf.Diagnostics;

/// <summary>
/// Felix's kernel gate (reference 7: Ubuntu 5.3.0, RHEL 4.18.0-193, others 5.3.0; below it Felix falls
/// back to iptables) and the effective minimum of current releases (5.10: older kernels pass the gate
/// but the verifier rejects the programs).
/// </summary>
public static class KernelRequirement
{
    public static readonly Version Effective = new(5, 10, 0);

    /// <summary>The gate for a node: (minimum, distribution) from its kernel version and OS image.</summary>
    public static (Version Minimum, int MinimumRelease, string Distribution) Gate(string kernel, string osImage)
    {
        string text = (kernel + " " + osImage).ToLowerInvariant();
        if (text.Contains("red hat", StringComparison.Ordinal) || Regex.IsMatch(text, @"el\d+_\d+") || text.Contains("rhel", StringComparison.Ordinal))
        {
            return (new Version(4, 18, 0), 193, "RHEL");
        }

        return (new Version(5, 3, 0), 0, text.Contains("ubuntu", StringComparison.Ordinal) ? "Ubuntu" : "other");
    }

    /// <summary>X.Y.Z and the release number after the dash ("5.4.0-1103-aws" is 5.4.0 release 1103).</summary>
    public static bool TryParse(string kernel, out Version version, out int release)
    {
        version = new Version(0, 0, 0);
        release = 0;
        Match m = Regex.Match(kernel, @"^(\d+)\.(\d+)(?:\.(\d+))?(?:-(\d+))?");
        if (!m.Success)
        {
            return false;
        }

        version = new Version(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
            m.Groups[3].Success ? int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture) : 0);
        release = m.Groups[4].Success && int.TryParse(m.Groups[4].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int r) ? r : 0;
        return true;
    }

    /// <summary>Whether the kernel passes Felix's gate.</summary>
    public static bool PassesGate(string kernel, string osImage)
    {
        (Version min, int minRelease, _) = Gate(kernel, osImage);
        return TryParse(kernel, out Version v, out int release) && (v > min || (v == min && release >= minRelease));
    }
}
