# Tab completion as a user gets it: TabExpansion2 on a command line, against the test cluster and
# this machine. Every parameter that names something on a node or in a cluster has a completer.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    Import-ModuleUnderTest

    # What TabExpansion2 offers at the end of a line, as the texts it would insert.
    function Complete([string] $Line) {
        @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText)
    }
}

Describe 'Completion without a cluster' {
    It 'Felix values complete from the field''s words, any case typed' {
        Complete 'Set-FelixBpfConfig -BpfLogLevel ' | Should -Be @('Off', 'Info', 'Debug')
        Complete 'Set-FelixBpfConfig -BpfLogLevel d' | Should -Be @('Debug')
        Complete 'Set-FelixBpfConfig -BpfAttachType T' | Should -Be @('TC', 'TCX')
        Complete 'Set-FelixBpfConfig -BpfExternalServiceMode ' | Should -Be @('Tunnel', 'DSR')
    }

    It 'every text field with a fixed set of words completes them, and its default is among them' {
        $set = Get-Command Set-FelixBpfConfig
        foreach ($entry in [CalicoBpf.Cluster.FelixFields]::Choices.GetEnumerator()) {
            $field = [CalicoBpf.Cluster.FelixFields]::Find($entry.Key)
            $parameter = $set.Parameters[$field.Property]
            @($parameter.Attributes | Where-Object { $_ -is [ArgumentCompleter] }).Count | Should -Be 1 -Because "-$($field.Property) has words to offer"
            (Complete "Set-FelixBpfConfig -$($field.Property) ") | Should -Be @($entry.Value) -Because $field.Json
            if ($field.Default) { $entry.Value | Should -Contain $field.Default -Because "$($field.Json)'s default" }
        }
    }

    It '-Clear and -Field complete field names, in the catalogue''s order' {
        Complete 'Set-FelixBpfConfig -Clear bpfLogF' | Should -Be @('bpfLogFilters')
        Complete 'Get-FelixBpfConfig -Field bpfMapSizeNAT' | Should -Be @('bpfMapSizeNATFrontend', 'bpfMapSizeNATBackend', 'bpfMapSizeNATAffinity')
        Complete 'Set-FelixBpfConfig -Clear *CTLB*' | Should -Be @('bpfCTLBLogFilter', 'bpfHostNetworkedNATWithoutCTLB')
    }

    It 'Test-CalicoEbpf -Check completes check ids' {
        Complete 'Test-CalicoEbpf -Check bpf-' | Should -Be @('bpf-requested', 'bpf-running')
    }

    It 'an unreachable cluster offers nothing and prints nothing' {
        $kc = Join-Path $TestDrive 'dead.kubeconfig'
        @'
apiVersion: v1
kind: Config
clusters: [ { name: dead, cluster: { server: "https://127.0.0.1:1" } } ]
users: [ { name: u, user: { token: t } } ]
contexts: [ { name: dead, context: { cluster: dead, user: u } } ]
current-context: dead
'@ | Set-Content $kc
        $errorsBefore = $Error.Count
        Complete "Get-BpfConntrack -Kubeconfig $kc -Node " | Should -BeNullOrEmpty
        Complete "Get-BpfCounter -Kubeconfig $kc -Node n1 -Interface " | Should -BeNullOrEmpty
        $Error.Count | Should -Be $errorsBefore
    }

    It 'locally, -Interface completes this machine''s links too, with no Calico maps pinned' {
        Complete "Get-BpfQdiscStatistic -PinPath $TestDrive -Interface l" | Should -Contain 'lo'
    }

    It 'every parameter that names a node, interface, map, Felix field or configuration has a completer' {
        $named = @{ Node = 'NodeNameCompleter'; Interface = 'InterfaceNameCompleter'; Field = 'FelixFieldCompleter'; Clear = 'FelixFieldCompleter'; Check = 'CheckIdCompleter' }
        $byName = @{
            'Get-BpfInterface' = 'InterfaceNameCompleter'; 'Get-BpfMap' = 'MapNameCompleter'; 'Get-CalicoNode' = 'NodeNameCompleter'
            'Get-FelixBpfConfig' = 'FelixConfigurationNameCompleter'; 'Set-FelixBpfConfig' = 'FelixConfigurationNameCompleter'
        }
        foreach ($command in Get-Command -Module CalicoBpf) {
            foreach ($p in $command.Parameters.Values) {
                $want = if ($p.Name -eq 'Name') { $byName[$command.Name] } else { $named[$p.Name] }
                if (-not $want) { continue }
                $completer = @($p.Attributes | Where-Object { $_ -is [ArgumentCompleter] })
                $completer.Count | Should -Be 1 -Because "$($command.Name) -$($p.Name) names something to complete"
                $completer[0].Type.Name | Should -Be $want -Because "$($command.Name) -$($p.Name)"
            }
        }
    }
}

Describe 'Completion against the test cluster' -Skip:(-not $kernel) {
    BeforeAll {
        $cluster = Start-ScenarioCluster guide-healthy $TestDrive
        $kc = $cluster.Kubeconfig
    }
    AfterAll { Stop-ScenarioCluster $cluster }

    It '-Node completes the cluster''s nodes, on every cmdlet that takes it' {
        Complete "Get-BpfConntrack -Kubeconfig $kc -Node " | Should -Be @('gh-a')
        Complete "Get-CalicoNode -Kubeconfig $kc " | Should -Be @('gh-a')
        Complete "Set-FelixBpfConfig -Kubeconfig $kc -Node g" | Should -Be @('gh-a')
        Complete "Test-CalicoEbpf -Kubeconfig $kc -Node x" | Should -BeNullOrEmpty
    }

    It 'reads a relative -Kubeconfig from PowerShell''s location, as the cmdlets do' {
        Push-Location (Split-Path $kc)
        try { Complete "Get-BpfConntrack -Kubeconfig ./$(Split-Path -Leaf $kc) -Node " | Should -Be @('gh-a') }
        finally { Pop-Location }
    }

    It 'takes -Kubeconfig from $PSDefaultParameterValues, as the demo sets it' {
        $PSDefaultParameterValues['*:Kubeconfig'] = $kc
        try { Complete 'Get-BpfMap -Node ' | Should -Be @('gh-a') }
        finally { $PSDefaultParameterValues.Remove('*:Kubeconfig') }
    }

    It '-Interface and Get-BpfInterface -Name complete the node''s interfaces Felix manages' {
        $names = @((Get-BpfInterface -Kubeconfig $kc -Node gh-a).Name | Sort-Object -Unique)
        $names | Should -Not -BeNullOrEmpty
        Complete "Get-BpfCounter -Kubeconfig $kc -Node gh-a -Interface " | Should -Be $names
        Complete "Get-BpfInterface -Kubeconfig $kc -Node gh-a " | Should -Be $names
        $first = $names[0]
        Complete "Get-BpfPolicy -Kubeconfig $kc -Node gh-a -Interface $($first.Substring(0, $first.Length - 1))" | Should -Contain $first
    }

    It 'Get-BpfMap -Name completes the maps pinned on the node' {
        $maps = @((Get-BpfMap -Kubeconfig $kc -Node gh-a -NoCount).Name | Where-Object { $_ -like 'cali_v4_ct*' } | Sort-Object)
        $maps | Should -Not -BeNullOrEmpty
        Complete "Get-BpfMap -Kubeconfig $kc -Node gh-a cali_v4_ct" | Should -Be $maps
    }

    It 'Get-FelixBpfConfig -Name completes the FelixConfigurations' {
        Complete "Get-FelixBpfConfig -Kubeconfig $kc " | Should -Be @('default')
        Complete "Set-FelixBpfConfig -Kubeconfig $kc -Name d" | Should -Be @('default')
        Complete "Set-FelixBpfConfig -Kubeconfig $kc -Name x" | Should -BeNullOrEmpty
    }
}
