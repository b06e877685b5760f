namespace CalicoBpf.Transport;

/// <summary>How the engine tells the caller about things worth knowing that are not errors.</summary>
public interface IEngineReporter
{
    void Warning(string message);

    void Verbose(string message);
}

/// <summary>A reporter that drops everything (tests, benchmarks).</summary>
public sealed class NullReporter : IEngineReporter
{
    public static readonly NullReporter Instance = new();

    public void Warning(string message) { }

    public void Verbose(string message) { }
}
