@{
    RootModule           = 'CalicoBpf.dll'
    # Stamped by build.ps1 from Directory.Build.props (CalicoBpfVersion): edit the version there.
    ModuleVersion        = '0.1.0'
    GUID                 = '6f4b7d1e-2c1a-4c1e-9a57-3e1f0b9c2d40'
    Author               = 'CalicoBpf contributors'
    CompanyName          = 'CalicoBpf'
    Copyright            = '(c) CalicoBpf contributors. Apache-2.0.'
    Description          = "Calico eBPF dataplane troubleshooting with objects: decode Calico's BPF maps (conntrack, counters, NAT, routes, ...) into rich .NET objects, on this machine or on any node of a cluster through the Kubernetes API; read and change FelixConfiguration's eBPF fields; run the troubleshooting guide's checks (Test-CalicoEbpf)."
    PowerShellVersion    = '7.4'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('CalicoBpf.Format.ps1xml')
    TypesToProcess       = @('CalicoBpf.Types.ps1xml')
    CmdletsToExport      = @(
        'Clear-BpfArp'
        'Clear-BpfCounter'
        'Compare-BpfState'
        'Export-BpfMetric'
        'Export-CalicoBpfDiagnostic'
        'Get-BpfArp'
        'Get-BpfConnectTimeProgram'
        'Get-BpfConntrack'
        'Get-BpfConntrackStatistic'
        'Get-BpfCounter'
        'Get-BpfDrop'
        'Get-BpfInterface'
        'Get-BpfIpSet'
        'Get-BpfMap'
        'Get-BpfNat'
        'Get-BpfNatAffinity'
        'Get-BpfNatMaglev'
        'Get-BpfPolicy'
        'Get-BpfProgramStatistic'
        'Get-BpfQdiscStatistic'
        'Get-BpfRoute'
        'Get-BpfTraceLog'
        'Get-CalicoNode'
        'Get-FelixBpfConfig'
        'Remove-BpfConnectTimeProgram'
        'Remove-BpfConntrack'
        'Set-FelixBpfConfig'
        'Test-BpfFlow'
        'Test-CalicoEbpf'
        'Use-FelixBpfDebugLog'
        'Watch-BpfConntrack'
    )
    FunctionsToExport    = @()
    AliasesToExport      = @()
    VariablesToExport    = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('Calico', 'eBPF', 'BPF', 'Kubernetes', 'Networking', 'Linux', 'PSEdition_Core')
            LicenseUri   = 'https://www.apache.org/licenses/LICENSE-2.0'
            ProjectUri   = 'https://github.com/calicobpf/CalicoBpf'
            ReleaseNotes = 'Maps, conntrack, counters, NAT, routes, IP sets, ARP, interfaces, policy hits, qdisc drops, trace logs, connect-time programs and the guarded changes, locally and on cluster nodes (Get-CalicoNode, -Node); FelixConfiguration eBPF fields (Get-/Set-FelixBpfConfig, Use-FelixBpfDebugLog); Test-CalicoEbpf.'
        }
    }
}
