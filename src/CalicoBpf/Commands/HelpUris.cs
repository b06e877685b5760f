namespace CalicoBpf.Commands;

/// <summary>Where Get-Help -Online sends a user: the cmdlet's help page in the project (en-US/NAME.md).</summary>
internal static class HelpUris
{
    public const string Base = "https://github.com/calicobpf/CalicoBpf/blob/main/en-US/";
}
