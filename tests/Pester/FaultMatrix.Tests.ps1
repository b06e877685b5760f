# docs/reliability.md's fault matrix, one It per row: the error id and category the user sees, that
# the other nodes' results are complete, and that nothing is left behind.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    Import-ModuleUnderTest
    $cluster = Start-ScenarioCluster fault-matrix $TestDrive

    function Kubeconfig([string] $Name, [scriptblock] $Edit) {
        $path = Join-Path $TestDrive $Name
        & $Edit (Get-Content -Raw $cluster.Kubeconfig) | Set-Content $path
        $path
    }

    function Read-Fleet {
        $objects = @(Get-BpfConntrack -Node * -ErrorVariable err -ErrorAction SilentlyContinue)
        [pscustomobject]@{ Objects = $objects; Errors = @($err) }
    }
}

AfterAll { Stop-ScenarioCluster $cluster }

Describe 'API faults' -Skip:(-not $kernel) {
    It '401: a token the API does not accept' {
        $bad = Kubeconfig bad-token { param($k) $k -replace 'token: admin-token', 'token: not-a-token' }
        $e = { Get-CalicoNode -Kubeconfig $bad } | Should -Throw -PassThru
        ($e.FullyQualifiedErrorId -split ',')[0], $e.CategoryInfo.Category | Should -Be @('ClusterUnauthorized', 'AuthenticationError')
        $e.Exception.Message | Should -Match '401'
    }

    It '404: an object or API that is not there' {
        Get-FelixBpfConfig nope -ErrorVariable err -ErrorAction SilentlyContinue
        ($err[0].FullyQualifiedErrorId -split ',')[0], $err[0].CategoryInfo.Category | Should -Be @('FelixConfigurationNotFound', 'ObjectNotFound')
    }

    It '429 with Retry-After: waited out and asked again; still throttled is one clear error' {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $overlay = Test-CalicoEbpf -Check overlay
        $overlay.Status | Should -Be 'Pass'
        $sw.Elapsed.TotalSeconds | Should -BeGreaterThan 1.9 -Because 'two Retry-After: 1 answers were waited out'
        $sync = Test-CalicoEbpf -Check service-sync-load
        $sync.Status | Should -Be 'Skipped'
        $sync.Message | Should -Match '429 Too many requests.*still throttled after 4 attempts'
    }

    It 'connection refused' {
        $closed = Kubeconfig closed { param($k) $k -replace 'server: https://127\.0\.0\.1:\d+', 'server: https://127.0.0.1:1' }
        $e = { Get-CalicoNode -Kubeconfig $closed } | Should -Throw -PassThru
        ($e.FullyQualifiedErrorId -split ',')[0], $e.CategoryInfo.Category | Should -Be @('ClusterUnavailable', 'ConnectionError')
        $e.Exception.Message | Should -Match 'cannot be reached.*(refused|Connection)'
    }

    It 'answers slower than -TimeoutSec: ClusterTimeout, OperationTimeout, when the timeout ends' {
        $slow = Kubeconfig slow { param($k) $k -replace 'token: admin-token', 'token: slow-token' }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $e = { Get-CalicoNode -Kubeconfig $slow -TimeoutSec 1 } | Should -Throw -PassThru
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 2.4 -Because 'the client gives up after 1 s, not when the answer comes (2.5 s)'
        ($e.FullyQualifiedErrorId -split ',')[0], $e.CategoryInfo.Category | Should -Be @('ClusterTimeout', 'OperationTimeout')
        $e.Exception.Message | Should -Match 'did not answer within 1 s to list nodes.*-TimeoutSec'
        @(Get-CalicoNode -Kubeconfig $slow -TimeoutSec 4).Count | Should -Be 7 -Because 'the timeout is per request: each of the two answers takes 2.5 s'
    }

    It 'a check whose API read is slower than -TimeoutSec says so, and the other checks run' {
        $slowLog = Kubeconfig slowlog { param($k) $k -replace 'token: admin-token', 'token: slowlog-token' }
        $r = @(Test-CalicoEbpf -Kubeconfig $slowLog -Node fm-ok -Check bpf-running, overlay -TimeoutSec 1)
        $running = $r | Where-Object Check -eq 'bpf-running'
        $running.Status | Should -Be 'Skipped'
        $running.Message | Should -Be 'Not checked: the cluster was too slow to give the calico-node log of fm-ok: The cluster did not answer within 1 s to read the log of calico-system/calico-node-hwqr8; it may be overloaded or unreachable. Try again, or allow more time with -TimeoutSec.'
        ($r | Where-Object Check -eq 'overlay').Status | Should -Be 'Pass'
    }

    It 'TLS failure: a server certificate the kubeconfig''s CA did not sign' {
        $ca = Join-Path $TestDrive 'other-ca.pem'
        & openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout (Join-Path $TestDrive 'other.key') -out $ca -days 1 -subj '/CN=other-ca' 2>$null
        $data = [Convert]::ToBase64String([IO.File]::ReadAllBytes($ca))
        $wrong = Kubeconfig wrong-ca { param($k) $k -replace 'certificate-authority-data: \S+', "certificate-authority-data: $data" }
        $e = { Get-CalicoNode -Kubeconfig $wrong } | Should -Throw -PassThru
        ($e.FullyQualifiedErrorId -split ',')[0] | Should -Be 'ClusterUnavailable'
        $e.Exception.Message | Should -Match 'SSL|certificate|TLS'
    }
}

Describe 'Node faults during a fan-out' -Skip:(-not $kernel) {
    BeforeAll { $fleet = Read-Fleet }

    It 'the healthy node''s results are complete' {
        @($fleet.Objects | Where-Object Node -eq 'fm-ok').Count | Should -Be 7
        $fleet.Errors.Count | Should -Be 4
        @($fleet.Objects | Where-Object Node -eq 'fm-silent').Count | Should -Be 3 -Because 'a slow node is waited for within the timeout'
        @($fleet.Objects | Where-Object Node -eq 'fm-slowstart').Count | Should -Be 4
    }

    It 'a tool missing in the node image: NodeToolMissing, NotInstalled' {
        $e = $fleet.Errors | Where-Object TargetObject -eq 'fm-notool'
        ($e.FullyQualifiedErrorId -split ',')[0], $e.CategoryInfo.Category | Should -Be @('NodeToolMissing', 'NotInstalled')
        "$e" | Should -Be 'The probe script (sh -c) failed on fm-notool with exit code 127: sh: 1: bpftool: not found'
    }

    It 'a command that fails on the node: NodeCommandFailed with its stderr' {
        $e = $fleet.Errors | Where-Object TargetObject -eq 'fm-fails'
        ($e.FullyQualifiedErrorId -split ',')[0], $e.CategoryInfo.Category | Should -Be @('NodeCommandFailed', 'InvalidResult')
        "$e" | Should -Match 'something on the node broke'
    }

    It 'garbage on stdout: one error for that node, no objects from it' {
        $e = $fleet.Errors | Where-Object TargetObject -eq 'fm-garbage'
        ($e.FullyQualifiedErrorId -split ',')[0], $e.CategoryInfo.Category | Should -Be @('BpfCallFailed', 'ReadError')
        "$e" | Should -Match 'Probing fm-garbage gave unexpected output: this is not what ls and bpftool print'
        @($fleet.Objects | Where-Object Node -eq 'fm-garbage').Count | Should -Be 0
    }

    It 'a node that disappeared between the listing and the exec: ClusterNotFound for it' {
        $e = $fleet.Errors | Where-Object TargetObject -eq 'fm-gone'
        ($e.FullyQualifiedErrorId -split ',')[0], $e.CategoryInfo.Category | Should -Be @('ClusterNotFound', 'ObjectNotFound')
        "$e" | Should -Match 'calico-node pod calico-system/calico-node-h2tld of fm-gone is gone \(404 Not Found\)'
    }

    It 'leaves no exec session running on the nodes' {
        Start-Sleep -Milliseconds 300
        @(Get-Process -ErrorAction SilentlyContinue | Where-Object { $_.ProcessName -eq 'bpftool' }).Count | Should -Be 0
        Get-ClusterActiveExecs $cluster | Should -Be 0
        Get-CalicoBpfThread | Should -BeNullOrEmpty
    }
}

Describe 'Nodes slower than -TimeoutSec' -Skip:(-not $kernel) {
    BeforeAll {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $objects = @(Get-BpfConntrack -Node fm-ok, fm-silent, fm-slowstart -TimeoutSec 1 -ErrorVariable err -ErrorAction SilentlyContinue)
        $elapsed = $sw.Elapsed
    }

    It 'a node whose command sends nothing: ClusterTimeout for it, its session closed' {
        $e = @($err | Where-Object TargetObject -eq 'fm-silent')
        $e.Count | Should -Be 1
        ($e[0].FullyQualifiedErrorId -split ',')[0], $e[0].CategoryInfo.Category | Should -Be @('ClusterTimeout', 'OperationTimeout')
        "$($e[0])" | Should -Match 'did not answer within 1 s to run .* on fm-silent: the command sent nothing for longer than that, so its session was closed'
        @($objects | Where-Object Node -eq 'fm-silent').Count | Should -Be 0
    }

    It 'a node whose exec does not start: ClusterTimeout for it' {
        $e = @($err | Where-Object TargetObject -eq 'fm-slowstart')
        $e.Count | Should -Be 1
        ($e[0].FullyQualifiedErrorId -split ',')[0], $e[0].CategoryInfo.Category | Should -Be @('ClusterTimeout', 'OperationTimeout')
        "$($e[0])" | Should -Match 'did not answer within 1 s to start a command in calico-system/calico-node-5c6tk on fm-slowstart'
    }

    It 'the other node is complete, and nobody waited for the slow ones'' answers' {
        @($objects | Where-Object Node -eq 'fm-ok').Count | Should -Be 7
        $err.Count | Should -Be 2
        $elapsed.TotalSeconds | Should -BeLessThan 2.4
    }

    It 'leaves no exec session open and no thread behind' {
        $deadline = [DateTime]::UtcNow.AddSeconds(5)
        while (((Get-ClusterActiveExecs $cluster) -gt 0 -or (Get-CalicoBpfThread)) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
        Get-ClusterActiveExecs $cluster | Should -Be 0
        Get-CalicoBpfThread | Should -BeNullOrEmpty
    }
}

Describe 'Secrets' -Skip:(-not $kernel) {
    It 'tokens and keys never appear in verbose or debug output, errors or objects' {
        $bad = Kubeconfig secret-bad-token { param($k) $k -replace 'token: admin-token', 'token: wrong-secret-token' }
        $ca = ((Get-Content $cluster.Kubeconfig) -match 'certificate-authority-data') -replace '.*:\s*', ''
        $text = & {
            Get-CalicoNode -Verbose -Debug
            Get-FelixBpfConfig -Verbose -Debug
            Get-BpfConntrack -Node * -Verbose -Debug -ErrorAction Continue
            Test-CalicoEbpf -Check access, drops -Verbose -Debug
            try { Get-CalicoNode -Kubeconfig $bad -Verbose -Debug } catch { $_ }
            Set-FelixBpfConfig -Node fm-ok -BpfLogLevel Info -WhatIf -Verbose -Debug
        } *>&1 | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { "$_ $($_.Exception | Out-String)" } else { $_ | ConvertTo-Json -Depth 4 -WarningAction SilentlyContinue } } | Out-String
        $text.Length | Should -BeGreaterThan 1000
        $text | Should -Not -Match 'admin-token'
        $text | Should -Not -Match 'wrong-secret-token'
        $text | Should -Not -Match 'Bearer'
        $text.Contains($ca.Trim().Substring(0, 40)) | Should -BeFalse
    }
}

Describe 'Ctrl+C in the middle of a 50-node fan-out' -Skip:(-not $kernel) {
    BeforeAll {
        $nodes = foreach ($i in 1..50) {
            "  - name: cc$('{0:d2}' -f $i)`n    address: 172.18.12.$i`n    execDelayMilliseconds: 1500`n    dataplane: { node: cc$('{0:d2}' -f $i), randomSeed: $i, conntrack: { tcp: 2 } }"
        }
        $file = Join-Path $TestDrive 'fleet.yaml'
        "install: operator`nnodes:`n" + ($nodes -join "`n") | Set-Content $file
        $fleet = Start-TestCluster -Scenario $file -Directory (Join-Path $TestDrive 'fleet')
    }
    AfterAll { Stop-TestCluster $fleet }

    It 'stops within a second and leaves no exec session open and no thread behind' {
        $ps = [PowerShell]::Create()
        $null = $ps.AddScript("Import-Module '$(Get-ModuleUnderTest)'; Get-BpfConntrack -Node * -ThrottleLimit 16 -Kubeconfig '$($fleet.Kubeconfig)'")
        $async = $ps.BeginInvoke()
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(20)
            while ((Get-ClusterActiveExecs $fleet) -lt 10 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
            Get-ClusterActiveExecs $fleet | Should -BeGreaterOrEqual 10 -Because 'the fan-out is under way'
            @(Get-CalicoBpfThread).Count | Should -BeGreaterOrEqual 10 -Because 'each node being read has a worker thread (the check below can see them)'
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 1
        }
        finally { $ps.Dispose() }

        $deadline = [DateTime]::UtcNow.AddSeconds(5)
        while (((Get-ClusterActiveExecs $fleet) -gt 0 -or (Get-CalicoBpfThread)) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
        Get-ClusterActiveExecs $fleet | Should -Be 0
        Get-CalicoBpfThread | Should -BeNullOrEmpty -Because 'every node worker and exec reader thread has ended'
    }
}
