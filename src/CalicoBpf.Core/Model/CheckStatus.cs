namespace CalicoBpf;

/// <summary>A check's verdict, worst first (the order results are listed in).</summary>
public enum CheckStatus
{
    Fail,
    Error,
    Warning,
    Skipped,
    Pass,
}
