namespace CalicoBpf.Arguments;

/// <summary>
/// -Protocol as users write it: a name as the tables show it (tcp, UDP, ICMP6, Proto-47), an
/// IpProtocol name, or the protocol's number (6, 17, 200: any of 0 to 255), as the help promises.
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
        string s when ConntrackText.ParseProtocol(s) is { } p => p,
        _ => throw new ArgumentTransformationMetadataException(
            $"'{value}' is not an IP protocol: give a name as the tables show it (TCP, UDP, ICMP, ICMP6, Proto-47) or as the type names it ({string.Join(", ", Enum.GetNames<IpProtocol>())}), or a number from 0 to 255."),
    };
}
