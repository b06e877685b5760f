namespace CalicoBpf;

/// <summary>A diagnostics bundle Export-CalicoBpfDiagnostic wrote: where it is, what it holds, and what it could not capture.</summary>
public sealed class DiagnosticBundle
{
    /// <summary>The zip's full path: give it to -Bundle.</summary>
    public string Path { get; init; } = string.Empty;

    /// <summary>Cluster (through the Kubernetes API) or Local (this machine, no cluster facts).</summary>
    public string Kind { get; init; } = string.Empty;

    /// <summary>The kubeconfig context the cluster was read through; empty for a local bundle.</summary>
    public string Context { get; init; } = string.Empty;

    /// <summary>Nodes in the bundle.</summary>
    public int Nodes { get; init; }

    /// <summary>Nodes captured whole.</summary>
    public int Complete { get; init; }

    /// <summary>Nodes some of whose maps the size bound left out (-MaxSize).</summary>
    public int Partial { get; init; }

    /// <summary>Nodes that could not be read at all.</summary>
    public int Failed { get; init; }

    /// <summary>Each node not captured whole, and each typed JSON left out, with why.</summary>
    public ValueList<string> Problems { get; init; } = ValueList<string>.Empty;

    /// <summary>Bytes of the zip.</summary>
    public long Size { get; init; }

    public DateTime Started { get; init; }

    public DateTime Finished { get; init; }

    public override string ToString() => Path;
}
