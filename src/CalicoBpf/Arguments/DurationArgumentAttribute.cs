namespace CalicoBpf.Arguments;

/// <summary>
/// A duration as users write one: Go's form, as calico-bpf prints ages and Set-FelixBpfConfig takes
/// them (5m, 1h30m, 1500ms), with days in front as the tables show long ages (2d04h, see
/// ConntrackText.ShortDuration), a TimeSpan or its text (00:05:00), or a number of seconds.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class DurationArgumentAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject o ? o.BaseObject : inputData;
        return value switch
        {
            TimeSpan t => t,
            // 90s unquoted reaches here as the Int16 90 (s is PowerShell's short suffix): seconds, as meant.
            short n => TimeSpan.FromSeconds(n),
            // 2d unquoted is the decimal 2 (d is PowerShell's decimal suffix): days were meant, and 2
            // seconds would remove far more than asked, so it is refused.
            decimal m => throw new ArgumentTransformationMetadataException(
                $"{m} reached -OlderThan as a number: PowerShell reads 2d unquoted as the decimal 2. Quote a duration with days ('2d', '2d04h'), or give hours (48h)."),
            int n => TimeSpan.FromSeconds(n),
            long n => TimeSpan.FromSeconds(n),
            double d => TimeSpan.FromSeconds(d),
            string s when double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double d) => TimeSpan.FromSeconds(d),
            string s when Cluster.GoDuration.TryParse(s, out TimeSpan t) => t,
            string s when WithDays(s) is { } t => t,
            // Only with colons: TimeSpan's own parser reads a bare "5" as five days.
            string s when s.Contains(':') && TimeSpan.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out TimeSpan t) => t,
            _ => throw new ArgumentTransformationMetadataException(
                $"'{value}' is not a duration: give one as 5m, 1h30m, 90s or 1500ms (as calico-bpf prints ages), 2d04h, 00:05:00, or a number of seconds."),
        };
    }

    /// <summary>"2d", "2d04h", "3d1h30m": whole days, then a Go duration or nothing.</summary>
    private static TimeSpan? WithDays(string text)
    {
        int d = text.IndexOf('d');
        if (d <= 0 || !int.TryParse(text.AsSpan(0, d), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int days))
        {
            return null;
        }

        string rest = text[(d + 1)..];
        return rest.Length == 0 ? TimeSpan.FromDays(days)
            : Cluster.GoDuration.TryParse(rest, out TimeSpan t) ? TimeSpan.FromDays(days) + t
            : null;
    }
}
