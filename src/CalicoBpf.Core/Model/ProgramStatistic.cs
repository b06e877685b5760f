namespace CalicoBpf;

/// <summary>
/// What one program attached to an interface hook cost over a window of Get-BpfProgramStatistic: how
/// often the kernel ran it and for how long, from the kernel's own program statistics (turned on for the
/// window only). Calico's attached program is the entry of the hook (the preamble, or the main program);
/// the programs it tail-calls (policy, the drop program) run inside its time, so its figures are the
/// hook's whole cost.
/// </summary>
public sealed class ProgramStatistic
{
    public string Node { get; init; } = string.Empty;
    public string Interface { get; init; } = string.Empty;
    public int IfIndex { get; init; }
    public PolicyHook Hook { get; init; }
    /// <summary>How the program is attached: TC, TCX or Netkit.</summary>
    public AttachKind Kind { get; init; }
    public uint ProgramId { get; init; }
    public string ProgramName { get; init; } = string.Empty;
    /// <summary>The program is Calico's (its name starts with cali).</summary>
    public bool IsCalico { get; init; }
    /// <summary>How many times the kernel ran it in the window.</summary>
    public ulong Runs { get; init; }
    /// <summary>Runs per second of the window.</summary>
    public double RunsPerSecond { get; init; }
    /// <summary>Its total run time in the window.</summary>
    public string RunTime => RunTimeValue.ToString("c", CultureInfo.InvariantCulture);
    /// <summary>RunTime typed; PowerShell shows it as the hidden property RunTimeValue (CalicoBpf.Types.ps1xml).</summary>
    internal TimeSpan RunTimeValue { get; init; }
    /// <summary>Run time per run, in nanoseconds; null when it did not run.</summary>
    public double? AverageNanoseconds { get; init; }
    /// <summary>How long the window was (between the two reads of the statistics).</summary>
    public string Window => WindowValue.ToString("c", CultureInfo.InvariantCulture);
    /// <summary>Window typed; PowerShell shows it as the hidden property WindowValue (CalicoBpf.Types.ps1xml).</summary>
    internal TimeSpan WindowValue { get; init; }

    public override string ToString() =>
        $"{Node} {Interface} {Hook} {ProgramName}: {Runs.ToString(CultureInfo.InvariantCulture)} runs, {(AverageNanoseconds is { } a ? a.ToString("0", CultureInfo.InvariantCulture) + " ns each" : "none")}";
}
