namespace CalicoBpf.Transport;

/// <summary>Where Calico keeps its dataplane objects on a node.</summary>
public static class NodePaths
{
    /// <summary>Where Felix pins every map (reference section 0).</summary>
    public const string CalicoPinDirectory = "/sys/fs/bpf/tc/globals";
}
