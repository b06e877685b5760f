# Every cmdlet with -Node against the calico-node container of each Calico release the module supports
# (tests/Pester/calico-releases.yaml): the image's keep-list of binaries and its bpftool (5.3 with no link
# object, 7.4, 7.5), no tracefs, no mount. What an operator would see on a real cluster. (Exec as a
# kubelet runs it, against kubectl, is tests/CalicoBpf.TestCluster.Tests' NodesThroughKubectlTests.)
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    $script:releases = @(
        @{ Node = 'r326'; Release = 'v3.26.5'; Bpftool = '5.3.0' }
        @{ Node = 'r329'; Release = 'v3.29.7'; Bpftool = '7.5.0' }   # 7.4.0 in the image; 7.5.0 stands in (CalicoNodeImage)
        @{ Node = 'r330'; Release = 'v3.30.7'; Bpftool = '7.5.0' }
        @{ Node = 'r331'; Release = 'v3.31.7'; Bpftool = '7.5.0' }
        @{ Node = 'r332'; Release = 'v3.32.1'; Bpftool = '7.5.0' }
        @{ Node = 'rhead'; Release = 'v3.34.0-0.dev'; Bpftool = '7.5.0' }
    )
    # Each cmdlet that runs commands on a node, as an operator would first call it; changes under -WhatIf
    # here (the real changes follow in their own test). At least Min objects come back, and no error.
    $script:cmdlets = @(
        @{ Command = 'Get-BpfMap'; Min = 10; Run = { param($n) Get-BpfMap -Node $n } }
        @{ Command = 'Get-BpfConntrack'; Min = 16; Run = { param($n) Get-BpfConntrack -Node $n } }
        @{ Command = 'Get-BpfConntrackStatistic'; Min = 1; Run = { param($n) Get-BpfConntrackStatistic -Node $n } }
        @{ Command = 'Get-BpfNat'; Min = 1; Run = { param($n) Get-BpfNat -Node $n } }
        @{ Command = 'Get-BpfNatAffinity'; Min = 0; Run = { param($n) Get-BpfNatAffinity -Node $n } }
        @{ Command = 'Get-BpfNatMaglev'; Min = 0; Run = { param($n) Get-BpfNatMaglev -Node $n } }
        @{ Command = 'Get-BpfRoute'; Min = 0; Run = { param($n) Get-BpfRoute -Node $n } }
        @{ Command = 'Get-BpfIpSet'; Min = 0; Run = { param($n) Get-BpfIpSet -Node $n } }
        @{ Command = 'Get-BpfArp'; Min = 0; Run = { param($n) Get-BpfArp -Node $n } }
        @{ Command = 'Get-BpfInterface'; Min = 0; Run = { param($n) Get-BpfInterface -Node $n } }
        @{ Command = 'Get-BpfCounter'; Min = 1; Run = { param($n) Get-BpfCounter -Node $n } }
        @{ Command = 'Get-BpfPolicy'; Min = 1; Run = { param($n) Get-BpfPolicy -Node $n } }
        @{ Command = 'Get-BpfQdiscStatistic'; Min = 2; Run = { param($n) Get-BpfQdiscStatistic -Node $n } }
        @{ Command = 'Get-BpfConnectTimeProgram'; Min = 0; Run = { param($n) Get-BpfConnectTimeProgram -Node $n } }
        @{ Command = 'Test-CalicoEbpf'; Min = 1; Run = { param($n) Test-CalicoEbpf -Node $n } }
        @{ Command = 'Clear-BpfCounter'; Min = 0; Run = { param($n) Clear-BpfCounter -Node $n -WhatIf } }
        @{ Command = 'Clear-BpfArp'; Min = 0; Run = { param($n) Clear-BpfArp -Node $n -WhatIf } }
        @{ Command = 'Remove-BpfConntrack'; Min = 0; Run = { param($n) Remove-BpfConntrack -Node $n -All -WhatIf } }
        @{ Command = 'Remove-BpfConnectTimeProgram'; Min = 0; Run = { param($n) Remove-BpfConnectTimeProgram -Node $n -WhatIf } }
    )
}

BeforeAll {
    Import-ModuleUnderTest
    $cluster = Start-ScenarioCluster calico-releases $TestDrive

    function Pod([string] $Node) {
        ((kubectl --kubeconfig $cluster.Kubeconfig get pods -n calico-system -o json | ConvertFrom-Json).items | Where-Object { $_.spec.nodeName -eq $Node }).metadata.name
    }

    function Exec([string] $Node, [string] $Script) {
        # kubectl exec into the node's calico-node, stderr with stdout.
        kubectl --kubeconfig $cluster.Kubeconfig exec -n calico-system (Pod $Node) -c calico-node -- sh -c $Script 2>&1
    }
}

AfterAll { Stop-ScenarioCluster $cluster }

Describe 'The calico-node container of <Release>' -ForEach $releases -Skip:(-not $kernel) {
    It 'is that release''s image: bpftool <Bpftool>, the keep-list''s tools only, no tracefs' {
        (Exec $Node 'bpftool version') | Select-Object -First 1 | Should -Be "bpftool v$Bpftool"
        # Kept: the shell and the tools the module's scripts use. Removed: mount, nsenter, head, wc, awk, cut, tr.
        Exec $Node 'for t in sh cat ls grep gzip ip tc date printf; do command -v $t >/dev/null || echo "missing $t"; done' | Should -BeNullOrEmpty
        Exec $Node 'for t in mount nsenter head wc awk cut tr ps calico-node calico; do command -v $t >/dev/null && echo "present $t"; done; true' | Should -BeNullOrEmpty
        Exec $Node 'grep -c tracefs /proc/mounts || true' | Should -Be '0'
        (Get-CalicoNode | Where-Object Node -eq $Node).CalicoRelease.Release.ToString() | Should -Be $Release
    }

    It '<Command> -Node runs there' -ForEach $cmdlets {
        $out = @(& $Run $Node -ErrorVariable errs -ErrorAction SilentlyContinue -WarningAction SilentlyContinue 6>$null)
        $errs | ForEach-Object { "$_" } | Should -BeNullOrEmpty
        $out.Count | Should -BeGreaterOrEqual $Min
        # What belongs to a node says so (Test-CalicoEbpf's cluster-wide checks belong to none).
        $out | Where-Object { $_.PSObject.Properties['Node'] -and $_.Node } | ForEach-Object Node | Where-Object { $_ -ne $Node } | Should -BeNullOrEmpty
    }

    It 'changes the node: Remove-BpfConntrack and Clear-BpfCounter' {
        $udp = @(Get-BpfConntrack -Node $Node -Protocol UDP)
        $udp.Count | Should -BeGreaterThan 0
        $result = $udp | Remove-BpfConntrack -Confirm:$false
        $result.Removed | Should -Be $udp.Count
        @(Get-BpfConntrack -Node $Node -Protocol UDP).Count | Should -Be 0
        (Get-BpfCounter -Node $Node eth0 | Where-Object Id -eq 'DroppedByPolicy').Ingress | Should -Be 10
        Clear-BpfCounter -Node $Node -Interface eth0 -Confirm:$false
        (Get-BpfCounter -Node $Node eth0 | Where-Object Id -eq 'DroppedByPolicy').Ingress | Should -Be 0
    }

    It 'follows the trace buffer through bpftool, which mounts tracefs in the container' {
        $mark = "cbpf-release-$Node-$PID"
        Add-TraceMark $mark
        $line = Get-BpfTraceLog -Node $Node -Follow -TimeoutSec 30 | Where-Object Message -match $mark | Select-Object -First 1
        $line.Node | Should -Be $Node
        Exec $Node 'grep -c tracefs /proc/mounts || true' | Should -Be '1'
    }

    It 'leaves nothing running in the container' {
        Wait-NodeIdle $cluster $Node | Should -BeNullOrEmpty
    }
}

Describe 'Nothing left running on a node' -Skip:(-not $kernel) {
    # The reader is bpftool prog tracelog where the container has no tracefs, and cat of trace_pipe
    # once something (that bpftool, in the tests above) has mounted it: either must end.
    It 'Ctrl+C on Get-BpfTraceLog -Node -Follow ends its reader on the node' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$(Get-ModuleUnderTest)'; Get-BpfTraceLog -Node r332 -Follow -Kubeconfig '$($cluster.Kubeconfig)'")
            $null = $ps.BeginInvoke()
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while (-not (Get-NodeProcess $cluster r332 | Where-Object { $_ -match '^(bpftool prog tracelog|cat \S+/trace_pipe)$' }) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            Get-NodeProcess $cluster r332 | Where-Object { $_ -match '^(bpftool prog tracelog|cat \S+/trace_pipe)$' } | Should -Not -BeNullOrEmpty
            $ps.Stop()
        }
        finally { $ps.Dispose() }
        Wait-NodeIdle $cluster r332 | Should -BeNullOrEmpty
        # And the next line is not eaten by a reader left behind.
        $mark = "cbpf-after-stop-$PID"
        Add-TraceMark $mark
        (Get-BpfTraceLog -Node r332 -Follow -TimeoutSec 30 | Where-Object Message -match $mark | Select-Object -First 1).Node | Should -Be 'r332'
    }

    It 'a command that hangs past -TimeoutSec is given up, and ends on the node' {
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $null = Get-BpfConnectTimeProgram -Node stuck -TimeoutSec 2 -ErrorVariable errs -ErrorAction SilentlyContinue
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 30
        "$($errs[0])" | Should -Match 'did not answer within 2 s'
        Wait-NodeIdle $cluster stuck | Should -BeNullOrEmpty
    }
}

Describe 'A broken image says what is missing' -Skip:(-not $kernel) {
    It 'no bpftool: NodeToolMissing naming bpftool' {
        $null = Get-BpfConntrack -Node nobpftool -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'NodeToolMissing,*'
        $errs[0].CategoryInfo.Category | Should -Be 'NotInstalled'
        "$($errs[0])" | Should -Match 'bpftool is not on the PATH of the calico-node container'
    }

    It 'no shell: the runtime''s InternalError becomes NodeToolMissing naming sh' {
        $null = Get-BpfMap -Node noshell -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'NodeToolMissing,*'
        "$($errs[0])" | Should -Match 'sh is not in the calico-node container of calico-system/calico-node-.*executable file not found'
    }
}
