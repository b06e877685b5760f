namespace CalicoBpf;

/// <summary>Where an effective Felix value comes from, highest priority first (reference 1.2).</summary>
public enum FelixValueSource
{
    /// <summary>A FELIX_* variable of the calico-node container (beats every FelixConfiguration).</summary>
    Environment,
    /// <summary>FelixConfiguration node.NAME.</summary>
    NodeConfiguration,
    /// <summary>A selector-scoped FelixConfiguration (Calico v3.32+) whose nodeSelector matches the node's labels.</summary>
    SelectorConfiguration,
    /// <summary>FelixConfiguration default.</summary>
    GlobalConfiguration,
    /// <summary>Felix's built-in default.</summary>
    BuiltInDefault,
}
