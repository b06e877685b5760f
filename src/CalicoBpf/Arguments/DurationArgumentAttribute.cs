namespace CalicoBpf.Arguments;

/// <summary>
/// A duration as users write one: Go's form, as calico-bpf prints ages and Set-FelixBpfConfig takes
/// them (5m, 1h30m, 1500ms), a TimeSpan or its text (00:05:00), or a number of seconds.
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
            int n => TimeSpan.FromSeconds(n),
            long n => TimeSpan.FromSeconds(n),
            double d => TimeSpan.FromSeconds(d),
            string s when double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double d) => TimeSpan.FromSeconds(d),
            string s when Cluster.GoDuration.TryParse(s, out TimeSpan t) => t,
            // Only with colons: TimeSpan's own parser reads a bare "5" as five days.
            string s when s.Contains(':') && TimeSpan.TryParse(s, System.Globalization.CultureInfo.InvariantCulture, out TimeSpan t) => t,
            _ => throw new ArgumentTransformationMetadataException(
                $"'{value}' is not a duration: give one as 5m, 1h30m, 90s or 1500ms (as calico-bpf prints ages), 00:05:00, or a number of seconds."),
        };
    }
}
