# Real tc programs on real veths in test-owned namespaces: drops in Get-BpfQdiscStatistic and
# Calico-format trace lines in Get-BpfTraceLog. The program is compiled with clang here.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    $script:clang = [bool](Get-Command clang -ErrorAction SilentlyContinue)
    if ($kernel -and -not $clang -and $env:CI -eq 'true') { throw 'clang is needed to build the test tc program (.ci/run installs it).' }
}

BeforeAll {
    $manifestPath = Import-ModuleUnderTest -PassThru
    $ns = "cbt-tc-$PID"
    $peer = "cbt-tcp-$PID"
    $mountedTracefs = $false
    # tc's BPF loader mounts a bpffs of its own at /tmp/bpft when /sys/fs/bpf is not one; it is ours to remove if it was not there.
    $tcBpfFs = '/tmp/bpft'
    $hadTcBpfFs = [bool](Get-Content /proc/self/mounts | Where-Object { ($_ -split ' ')[1] -eq $tcBpfFs })
    $ready = $false
    if ((Test-KernelAvailable) -and (Get-Command clang -ErrorAction SilentlyContinue)) {
        $obj = Join-Path $TestDrive 'drop_and_trace.o'
        & clang -O2 -target bpf -c (Join-Path $PSScriptRoot '../bpf/drop_and_trace.c') -o $obj
        if ($LASTEXITCODE) { throw 'clang could not build tests/bpf/drop_and_trace.c' }
        if (-not (Get-Content /proc/self/mounts | Where-Object { ($_ -split ' ')[2] -eq 'tracefs' })) {
            & mount -t tracefs nodev /sys/kernel/tracing
            if ($LASTEXITCODE) { throw 'mount -t tracefs failed' }
            $mountedTracefs = $true
        }
        & ip netns add $ns; & ip netns add $peer
        # No IPv6 on the test links: router solicitations and MLD reports would keep arriving while counters are compared.
        foreach ($n in $ns, $peer) { & ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 }
        & ip -n $ns link add cbtveth0b type veth peer name cbtveth0a
        & ip -n $ns link set cbtveth0a netns $peer
        & ip -n $ns addr add 10.199.0.2/24 dev cbtveth0b
        & ip -n $peer addr add 10.199.0.1/24 dev cbtveth0a
        & ip -n $ns link set cbtveth0b up; & ip -n $peer link set cbtveth0a up
        # A static neighbour: each datagram crosses the veth at once, with no ARP exchange (which the program would drop).
        $mac = (& ip -n $ns -j link show cbtveth0b | ConvertFrom-Json).address
        & ip -n $peer neigh add 10.199.0.2 lladdr $mac dev cbtveth0a
        & ip netns exec $ns tc qdisc add dev cbtveth0b clsact
        & ip netns exec $ns tc filter add dev cbtveth0b ingress bpf da obj $obj sec classifier
        if ($LASTEXITCODE) { throw 'tc could not attach the test program' }
        function Send-Packets([int] $Count) {
            & ip netns exec $peer bash -c "for i in `$(seq 1 $Count); do echo hello > /dev/udp/10.199.0.2/5353; sleep 0.05; done"
        }
        Send-Packets 5
        $ready = $true
    }
}

AfterAll {
    & ip netns del $ns 2>$null
    & ip netns del $peer 2>$null
    if ($mountedTracefs) { & umount /sys/kernel/tracing }
    if (-not $hadTcBpfFs -and (Get-Content /proc/self/mounts | Where-Object { ($_ -split ' ')[1] -eq $tcBpfFs })) {
        & umount $tcBpfFs
        Remove-Item $tcBpfFs -ErrorAction SilentlyContinue
    }
}

Describe 'Drops and trace lines of real tc programs' -Skip:(-not ($kernel -and $clang)) {
    It 'Get-BpfQdiscStatistic reports the drops tc reports, read over rtnetlink' {
        $tcBefore = (& ip netns exec $ns tc -s -j qdisc show dev cbtveth0b | ConvertFrom-Json) | Where-Object kind -eq 'clsact'
        $ours = & ip netns exec $ns (Get-PwshPath) -NoProfile -NonInteractive -Command "Import-Module '$manifestPath'; Get-BpfQdiscStatistic -Interface cbtveth0b -Kind clsact | ConvertTo-Json -Compress" | ConvertFrom-Json
        $tc = (& ip netns exec $ns tc -s -j qdisc show dev cbtveth0b | ConvertFrom-Json) | Where-Object kind -eq 'clsact'
        $ours.Drops | Should -BeGreaterOrEqual 5
        $tcBefore.drops | Should -Be $tc.drops -Because 'nothing else crosses the test link'
        $ours.Drops | Should -Be $tc.drops
        $ours.Packets | Should -Be $tc.packets
        $ours.Bytes | Should -Be $tc.bytes
        $ours.Parent | Should -Be 'ffff:fff1'
    }

    It 'Get-BpfTraceLog parses the Calico-format lines the program printed' {
        $lines = @(Get-BpfTraceLog -Interface cbtveth0b)
        $final = @($lines | Where-Object Result)
        $final.Count | Should -BeGreaterOrEqual 5
        $f = $final[-1]
        $f | Should -BeOfType ([CalicoBpf.TraceLogEntry])
        $f.Direction | Should -Be 'Ingress'
        $f.Result | Should -Be 'DENY'
        $f.Code | Should -Be 4
        $f.Reason | Should -Be 'dropped by policy'
        $f.ExecutionNanoseconds | Should -BeGreaterThan 1000
        $f.Time | Should -BeGreaterThan ([DateTime]::UtcNow.AddHours(-1))
        @($lines | Where-Object Message -like 'New packet at ifindex=*').Count | Should -BeGreaterOrEqual 5
        @(Get-BpfTraceLog -Interface cbtveth0b -Last 2).Count | Should -Be 2
        @(Get-BpfTraceLog -Interface cbtveth0b -Direction Egress).Count | Should -Be 0
    }

    It 'Get-BpfTraceLog -Follow streams new lines until stopped' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$manifestPath'; Get-BpfTraceLog -Follow -Interface cbtveth0b")
            $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $null = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $output)
            Start-Sleep -Milliseconds 500
            $deadline = [DateTime]::UtcNow.AddSeconds(20)
            while ($output.Count -lt 2 -and [DateTime]::UtcNow -lt $deadline) { Send-Packets 2 }
            # (Enumerating a running instance's streams would block: report counts only.)
            $output.Count | Should -BeGreaterOrEqual 2 -Because "the follower had $($ps.Streams.Error.Count) errors, state $($ps.InvocationStateInfo.State)"
            $ps.Stop()
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $output[0].Interface | Should -Be 'cbtveth0b'
        } finally { $ps.Dispose() }
    }
}
