# The README's transcripts are the demo's real output: a fresh run of both demos must print them,
# beyond timings, process ids, ports and program ids (build/Transcript.ps1). After a change of
# output, `dotnet pwsh ./build.ps1 readme` writes them again.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    . (Join-Path $PSScriptRoot '../../build/Transcript.ps1')
    $script:readme = Join-Path $PSScriptRoot '../../README.md'
}

Describe 'README transcripts' {
    It 'has both transcript blocks, each starting where the demo starts' {
        $t = Get-ReadmeTranscript $readme
        $t.Node[0] | Should -Match '^Simulated Calico eBPF node '
        $t.Cluster[0] | Should -Match '^Test cluster at '
    }

    It 'the comparison tells a timing from a change' {
        $a = ConvertTo-ComparableTranscript @('UDP 10.0.0.1:53 NatReverse   887.4771ms', 'Age 11m08s, 2h05m, 1m30.5s', '"Age": "00:11:08.2828276"', 'in /tmp/calicobpf-demo-22358/x', 'TC ing:3720 egr:3721')
        $b = ConvertTo-ComparableTranscript @('UDP 10.0.0.1:53 NatReverse 1.3314487s', 'Age 9m59s, 3d04h, 2s', '"Age": "1.02:00:01"', 'in /tmp/calicobpf-demo-9685/x', 'TC ing:12 egr:13')
        $b | Should -Be $a
        ConvertTo-ComparableTranscript @('UDP 10.0.0.2:53 NatReverse 1s') | Should -Not -Be (ConvertTo-ComparableTranscript @('UDP 10.0.0.1:53 NatReverse 1s'))
    }
}

Describe 'README transcripts against a fresh run of the demo' -Skip:(-not $kernel) {
    BeforeAll {
        $script:fresh = Invoke-DemoTranscript -ModulePath (Get-ModuleUnderTest) -Simulation (Get-SimulationPath) -TestCluster $env:CALICOBPF_TESTCLUSTER
        $script:written = Get-ReadmeTranscript $readme
    }

    It 'the <_> transcript is what the demo prints now (else: dotnet pwsh ./build.ps1 readme)' -ForEach @('Node', 'Cluster') {
        $now = @(ConvertTo-ComparableTranscript $fresh[$_])
        $then = @(ConvertTo-ComparableTranscript $written[$_])
        $diff = Compare-Object $then $now -SyncWindow 0 | ForEach-Object { "$($_.SideIndicator) $($_.InputObject)" }
        $diff | Should -BeNullOrEmpty -Because "README.md's $_ transcript must be the demo's output (<= README, => demo)"
    }

    It 'every help example that runs a demo command shows what the demo prints now' {
        $commands = Get-TranscriptCommands $fresh
        $examples = @(Find-DemoHelpExamples (Join-Path $PSScriptRoot '../../en-US') $commands)
        $examples.Count | Should -BeGreaterThan 10 -Because 'most help examples are the demo''s commands'
        foreach ($e in $examples) {
            $shown = @(ConvertTo-ComparableTranscript @((Get-Content $e.File)[$e.First..$e.Last] | Where-Object { $_.Trim() }))
            $now = @(ConvertTo-ComparableTranscript $commands[$e.Command])
            $diff = Compare-Object $shown $now -SyncWindow 0 | ForEach-Object { "$($_.SideIndicator) $($_.InputObject)" }
            $diff | Should -BeNullOrEmpty -Because "$(Split-Path -Leaf $e.File) $($e.Example) must show the demo's output (<= help, => demo; dotnet pwsh ./build.ps1 readme)"
        }
    }
}
