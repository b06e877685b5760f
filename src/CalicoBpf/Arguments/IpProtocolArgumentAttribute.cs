namespace CalicoBpf.Arguments;

/// <summary>
/// -Protocol as users write it: a name as the tables show it (tcp, UDP, icmp), or the protocol's
/// number (6, 17, 200: any of 0 to 255, named or not), as the help promises.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class IpProtocolArgumentAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) =>
        ArgumentLists.Map(inputData, One);

    private static object One(object value) => value switch
    {
        IpProtocol p => p,
        byte b => (IpProtocol)b,
        int n when n is >= 0 and <= 255 => (IpProtocol)n,
        long n when n is >= 0 and <= 255 => (IpProtocol)n,
        string s when byte.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out byte b) => (IpProtocol)b,
        string s when Enum.TryParse(s, ignoreCase: true, out IpProtocol p) && !int.TryParse(s, out _) => p,
        _ => throw new ArgumentTransformationMetadataException(
            $"'{value}' is not an IP protocol: give a name ({string.Join(", ", Enum.GetNames<IpProtocol>())}) or a number from 0 to 255."),
    };
}
