namespace CalicoBpf.Arguments;

/// <summary>-State as the tables show it (SYN-SENT, ESTABLISHED, as calico-bpf prints them) or by the enum's names (SynSent).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class TcpStateArgumentAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData) =>
        ArgumentLists.Map(inputData, One);

    private static object One(object value) => value switch
    {
        TcpState s => s,
        string text when ConntrackText.ParseState(text) is { } s => s,
        _ => throw new ArgumentTransformationMetadataException(
            $"'{value}' is not a TCP state: give one as the table shows it ({string.Join(", ", ConntrackText.StateTexts)}) or by name ({string.Join(", ", Enum.GetNames<TcpState>().Where(n => n != nameof(TcpState.None)))})."),
    };
}
