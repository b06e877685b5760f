namespace CalicoBpf.Commands;

/// <summary>The engine's warnings and verbose messages, written by the cmdlet on the pipeline thread.</summary>
internal sealed class Reporter : IEngineReporter
{
    private readonly Cmdlet _cmdlet;

    public Reporter(Cmdlet cmdlet) => _cmdlet = cmdlet;

    public void Warning(string message) => _cmdlet.WriteWarning(message);

    public void Verbose(string message) => _cmdlet.WriteVerbose(message);
}
