# Counters over time and drops on the real kernel. tests/bpf/count_like_calico.c, attached with tc to a
# real interface and given that node's own pinned cali_counters and cali_rule_ctrs, counts each real
# packet as Calico counts a policy drop (and prints Calico's debug lines for it); Get-BpfCounter and
# Get-BpfPolicy -SampleInterval and Get-BpfDrop must see exactly the packets sent, here (a veth of this
# namespace) and on a test cluster node (-Node, through its calico-node container), with resets after
# Clear-BpfCounter, one clock across nodes, and Ctrl+C.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    $script:clang = [bool](Get-Command clang -ErrorAction SilentlyContinue)
    if ($kernel -and -not $clang -and $env:CI -eq 'true') { throw 'clang is needed to build the test tc program (.ci/run installs it).' }
}

BeforeAll {
    $manifest = Import-ModuleUnderTest -Simulation -PassThru
    $ruleId = 24122
    $cluster = $null
    # Whatever a failed test leaves, kernel.bpf_stats_enabled goes back to this in AfterAll.
    $statsBefore = if (Test-Path /proc/sys/kernel/bpf_stats_enabled) { (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() }
    if ($kernel -and $clang) { $cluster = Start-TestCluster -Scenario (Join-Path $PSScriptRoot 'sampling.yaml') -Directory $TestDrive }

    function Add-CountingProgram([string] $Netns, [string] $Interface, [string] $PinPath, [string] $ProgramPin, [string] $Tag) {
        # The program, loaded with the node's own maps, on the interface's tc ingress; its trace lines carry
        # Calico's tag for the interface: the name padded with - to 15, then -I or -E.
        $obj = Join-Path $TestDrive "count-$Interface.o"
        & clang -O2 -g -target bpf "-DRULE_ID=${ruleId}ULL" "-DTAG_TEXT=$($Interface.PadRight(15, '-'))-$Tag" -c (Join-Path $PSScriptRoot '../bpf/count_like_calico.c') -o $obj
        if ($LASTEXITCODE) { throw 'clang could not build tests/bpf/count_like_calico.c' }
        $counters = (Get-ChildItem $PinPath -Filter 'cali_counters*' | Select-Object -First 1).FullName
        $rules = (Get-ChildItem $PinPath -Filter 'cali_rule_ctrs*' | Select-Object -First 1).FullName
        & bpftool prog load $obj $ProgramPin type classifier map name counters pinned $counters map name rule_ctrs pinned $rules
        if ($LASTEXITCODE) { throw "bpftool could not load $obj with $counters and $rules" }
        if ($Netns) { & ip netns exec $Netns tc filter add dev $Interface ingress bpf da object-pinned $ProgramPin }
        else { & tc filter add dev $Interface ingress bpf da object-pinned $ProgramPin }
        if ($LASTEXITCODE) { throw "tc could not attach the counting program to $Interface" }
    }

    function Send-Datagram([string] $Netns, [string] $Address, [int] $Count) {
        # Each datagram leaves the peer at once (a static neighbour) and reaches the counted interface's ingress.
        & ip netns exec $Netns bash -c "for i in `$(seq 1 $Count); do echo x > /dev/udp/$Address/9; done"
    }

    function Start-Sampling([string] $Command) {
        # The command in a runspace of its own that already has the module, started, its output collected as it comes.
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$manifest'; `$VerbosePreference = 'Continue'").Invoke()
        $ps.Commands.Clear()
        $out = [System.Management.Automation.PSDataCollection[psobject]]::new()
        $null = $ps.AddScript($Command)
        $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $out)
        [pscustomobject]@{ PS = $ps; Out = $out; Async = $async }
    }

    function Wait-Baseline($Run, [int] $Seconds = 30) {
        # The loop says when its baseline is read (a verbose record): what is sent after it is in the samples.
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while ([DateTime]::UtcNow -lt $deadline -and -not $Run.Async.IsCompleted) {
            $v = $Run.PS.Streams.Verbose
            for ($i = 0; $i -lt $v.Count; $i++) { if ("$($v[$i])" -like 'Baseline read*') { return } }
            Start-Sleep -Milliseconds 20
        }
        throw "The baseline was not read within $Seconds s: $($Run.PS.Streams.Error | Out-String)"
    }

    function Wait-Sample($Run, [int] $Number, [int] $Seconds = 30) {
        # By index: enumerating a PSDataCollection that is still open waits for it to complete.
        $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
        while ([DateTime]::UtcNow -lt $deadline -and -not $Run.Async.IsCompleted) {
            $n = $Run.Out.Count
            if ($n -gt 0 -and $Run.Out[$n - 1].Sample -ge $Number) { return }
            Start-Sleep -Milliseconds 20
        }
        throw "No sample $Number came within $Seconds s: $($Run.PS.Streams.Error | Out-String)"
    }

    function Stop-Sampling($Run) {
        # Ctrl+C on the run: how long the stop took, in seconds; the runspace is gone afterwards, also on failure.
        try {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $Run.PS.Stop()
            $sw.Elapsed.TotalSeconds
        }
        finally { $Run.PS.Dispose() }
    }

    function Complete-Sampling($Run) {
        try { $null = $Run.PS.EndInvoke($Run.Async) } finally { $errors = @($Run.PS.Streams.Error); $warnings = @($Run.PS.Streams.Warning); $verbose = @($Run.PS.Streams.Verbose); $Run.PS.Dispose() }
        [pscustomobject]@{ Samples = @($Run.Out); Errors = $errors; Warnings = $warnings; Verbose = $verbose }
    }

    function New-Flow([string] $Client, [string] $Backend, [string] $Protocol = 'TCP', [string] $Service = '') {
        # One connection's conntrack entries (a NAT pair through a service), as the simulator writes Calico's.
        $yaml = "node: flows`nrandomSeed: 1`nconnections:`n  - { protocol: $Protocol, client: `"$Client`", backend: `"$Backend`", service: `"$Service`" }"
        , [CalicoBpf.ConntrackEntry[]] @([CalicoBpf.Simulation.NodeScenario]::Parse($yaml).GenerateConntrack([CalicoBpf.Interop.KernelInfo]::MonotonicNanoseconds()))
    }

    function Get-ConntrackPin([string] $PinPath) {
        (Get-ChildItem $PinPath -Filter 'cali_v4_ct*' | Where-Object Name -match '^cali_v4_ct\d+$' | Sort-Object { [int]($_.Name -replace '^cali_v4_ct', '') } | Select-Object -Last 1).FullName
    }

    function Test-Rates($Samples) {
        foreach ($s in $Samples) {
            $s.IntervalValue.TotalSeconds | Should -BeGreaterThan 0.5 -Because 'samples are one second apart'
            $s.IntervalValue.TotalSeconds | Should -BeLessThan 2.5 -Because 'samples are one second apart'
            $s.Rate | Should -BeGreaterOrEqual 0
            [math]::Abs($s.Rate - $s.Delta / $s.IntervalValue.TotalSeconds) | Should -BeLessThan 1e-6 -Because 'Rate is Delta per second of Interval'
        }
    }

    function Test-Counted($Samples, [int] $Packets, [string] $Node, [string] $Interface, [int] $From = 2) {
        # Every packet sent after sample 1 was counted once on ingress as TotalPackets and DroppedByPolicy, and nothing else moved there.
        $mine = @($Samples | Where-Object { $_.Node -eq $Node -and $_.Interface -eq $Interface -and $_.Sample -ge $From })
        foreach ($id in 'TotalPackets', 'DroppedByPolicy') {
            $sum = ($mine | Where-Object { $_.Id -eq $id -and $_.Hook -eq 'Ingress' } | Measure-Object Delta -Sum).Sum
            $sum | Should -Be $Packets -Because "the $Packets datagrams sent each moved $id once"
        }
        @($mine | Where-Object { $_.Delta -gt 0 -and ($_.Hook -ne 'Ingress' -or $_.Id -notin 'TotalPackets', 'DroppedByPolicy') }) | Should -BeNullOrEmpty
    }
}

AfterAll {
    Stop-TestCluster $cluster
    if ($statsBefore -and (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() -ne $statsBefore) { Set-Content /proc/sys/kernel/bpf_stats_enabled $statsBefore }
}

Describe 'Sampled counters on this node' -Skip:(-not ($kernel -and $clang)) {
    BeforeAll {
        $fs = New-TestBpfFs
        $mountedTracefs = $false
        if (-not (Get-Content /proc/self/mounts | Where-Object { ($_ -split ' ')[2] -eq 'tracefs' })) {
            & mount -t tracefs nodev /sys/kernel/tracing
            if ($LASTEXITCODE) { throw 'mount -t tracefs failed' }
            $mountedTracefs = $true
        }
        $ns = "cbt-smp-$PID"
        $host_ = "cbs$PID"
        $peer = "cbsp$PID"
        & ip netns add $ns
        & ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        & ip link add $host_ type veth peer name $peer
        & sysctl -qw "net.ipv6.conf.$host_.disable_ipv6=1"
        & ip link set $peer netns $ns
        & ip link set $host_ up
        & ip netns exec $ns sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1"
        & ip -n $ns addr add 10.198.7.2/24 dev $peer
        & ip -n $ns link set $peer up
        $mac = (& ip -j link show $host_ | ConvertFrom-Json).address
        & ip -n $ns neigh add 10.198.7.1 lladdr $mac dev $peer
        & tc qdisc add dev $host_ clsact

        $scenario = [CalicoBpf.Simulation.NodeScenario]::Parse(@"
node: pester-sampling
calicoVersion: v3.32.1
randomSeed: 6
conntrack: { tcp: 20, udp: 5 }
interfaces:
  - name: $host_
    ingress: { TotalPackets: 10, DroppedByPolicy: 1 }
    egress: { TotalPackets: 10 }
routes:
  - { cidr: 10.198.7.2/32, type: local workload in-pool, interface: $host_ }
policies:
  - interface: $host_
    hook: ingress
    tiers:
      - name: default
        policies:
          - name: shop/knp.default.deny-all
            rules:
              - { action: deny, matchId: $ruleId, hits: 1 }
"@)
        $links = [System.Collections.Generic.Dictionary[string, int]]::new()
        $links[$host_] = (& ip -j link show $host_ | ConvertFrom-Json).ifindex
        $policyDir = Join-Path $TestDrive 'policy'
        $sim = [CalicoBpf.Simulation.SimulatedDataplane]::Claim($fs.PinPath)
        try { $scenario.Seed($sim, $links, $policyDir) } finally { $sim.Dispose() }
        # A host interface to Felix (cali_iface says so): its TC ingress program tags its lines -I.
        Add-CountingProgram -Interface $host_ -PinPath $fs.PinPath -ProgramPin (Join-Path $fs.Root 'count') -Tag I
        $local = "-PinPath '$($fs.PinPath)' -Interface $host_"

        function Invoke-DropWindow([int] $Packets, [string] $Options = '') {
            # One 3 s window of Get-BpfDrop with $Packets datagrams dropped in it, after its baseline; no error.
            $run = Start-Sampling "Get-BpfDrop $local -PolicyDebugPath '$policyDir' -Window 3 $Options"
            Wait-Baseline $run
            Send-Datagram $ns 10.198.7.1 $Packets
            $r = Complete-Sampling $run
            $r.Errors | Should -BeNullOrEmpty
            $r
        }
    }
    AfterAll {
        & ip link del $host_ 2>$null
        & ip netns del $ns 2>$null
        Remove-TestBpfFs $fs
        if ($mountedTracefs) { & umount /sys/kernel/tracing }
    }

    It 'each sample gives the rise of every counter that moved, by real packets, and its rate' {
        $run = Start-Sampling "Get-BpfCounter $local -SampleInterval 1 -MaxSamples 3 -IncludeUnchanged"
        Wait-Sample $run 1
        Send-Datagram $ns 10.198.7.1 7
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $r.Samples | Should -Not -BeNullOrEmpty
        $r.Samples[0] | Should -BeOfType ([CalicoBpf.CounterSample])
        @($r.Samples.Sample | Sort-Object -Unique) | Should -Be @(1, 2, 3)
        Test-Counted $r.Samples 7 $r.Samples[0].Node $host_
        Test-Rates $r.Samples
        @($r.Samples | Where-Object Reset) | Should -BeNullOrEmpty
        # The values are the counters' full 64-bit sums: the seeded 10 plus every packet.
        ($r.Samples | Where-Object { $_.Sample -eq 3 -and $_.Id -eq 'TotalPackets' -and $_.Hook -eq 'Ingress' }).Value | Should -Be (10 + 7)
        # One clock: all rows of a sample carry its time, one interval after the one before.
        foreach ($n in 1..3) { @($r.Samples | Where-Object Sample -eq $n | Select-Object -ExpandProperty Timestamp -Unique).Count | Should -Be 1 }
        $t = @(1..3 | ForEach-Object { ($r.Samples | Where-Object Sample -eq $_ | Select-Object -First 1).Timestamp })
        ($t[2] - $t[1]).TotalSeconds | Should -BeGreaterThan 0.8
        ($t[2] - $t[1]).TotalSeconds | Should -BeLessThan 1.5
    }

    It 'by default a sample holds only what moved' {
        $run = Start-Sampling "Get-BpfCounter $local -SampleInterval 1 -MaxSamples 3"
        Wait-Baseline $run
        Send-Datagram $ns 10.198.7.1 3
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        @($r.Samples | Where-Object { $_.Delta -eq 0 -and -not $_.Reset }) | Should -BeNullOrEmpty
        @($r.Samples.Id | Sort-Object -Unique) | Should -Be @('DroppedByPolicy', 'TotalPackets')
        ($r.Samples | Where-Object Id -eq 'TotalPackets' | Measure-Object Delta -Sum).Sum | Should -Be 3
    }

    It 'a counter cleared between samples is a reset, with what it counted since, never a negative rate' {
        $run = Start-Sampling "Get-BpfCounter $local -SampleInterval 1 -MaxSamples 3 -IncludeUnchanged"
        Wait-Sample $run 1
        Clear-BpfCounter -PinPath $fs.PinPath -Interface $host_ -Confirm:$false
        Send-Datagram $ns 10.198.7.1 4
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $resets = @($r.Samples | Where-Object { $_.Reset -and $_.Id -eq 'TotalPackets' -and $_.Hook -eq 'Ingress' })
        $resets.Count | Should -Be 1
        $resets[0].Delta | Should -Be $resets[0].Value -Because 'after a reset, Delta is what the counter holds since'
        # Egress was cleared too and stays at 0: a reset to zero, then no movement.
        @($r.Samples | Where-Object { $_.Reset -and $_.Hook -eq 'Egress' -and $_.Id -eq 'TotalPackets' }).Count | Should -Be 1
        ($r.Samples | Where-Object { $_.Sample -eq 3 -and $_.Id -eq 'TotalPackets' -and $_.Hook -eq 'Ingress' }).Value | Should -Be 4
        Test-Rates $r.Samples
    }

    It 'Get-BpfPolicy -SampleInterval gives the deny rule''s hits per sample' {
        $run = Start-Sampling "Get-BpfPolicy $local -PolicyDebugPath '$policyDir' -SampleInterval 1 -MaxSamples 3 -IncludeUnchanged"
        Wait-Sample $run 1
        Send-Datagram $ns 10.198.7.1 5
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $r.Samples[0] | Should -BeOfType ([CalicoBpf.PolicyRuleSample])
        $rule = @($r.Samples | Where-Object MatchId -eq $ruleId)
        $rule.Count | Should -Be 3
        ($rule | Where-Object Sample -ge 2 | Measure-Object Delta -Sum).Sum | Should -Be 5
        $rule[0].Policy | Should -Be 'shop/knp.default.deny-all'
        $rule[0].Action | Should -Be 'deny'
        Test-Rates $r.Samples
    }

    It 'Ctrl+C on -Continuous stops within a second, between samples or in one' {
        $run = Start-Sampling "Get-BpfCounter $local -Continuous -SampleInterval 30"
        Start-Sleep -Milliseconds 500
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $run.PS.Stop()
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 1
        $run.PS.InvocationStateInfo.State | Should -Be 'Stopped'
        $run.PS.Dispose()
    }

    It 'Get-BpfDrop explains a window''s drops: reason, count, the deny rule, the dropped packets'' trace lines, and with -Resolve the pods' {
        $r = Invoke-DropWindow 5 "-Resolve -Kubeconfig '$($cluster.Kubeconfig)'"
        $d = @($r.Samples)
        $d.Count | Should -Be 1 -Because 'one interface hook dropped for one reason'
        $d[0] | Should -BeOfType ([CalicoBpf.PacketDrop])
        $d[0].Interface | Should -Be $host_
        $d[0].Hook | Should -Be 'Ingress'
        $d[0].Id | Should -Be 'DroppedByPolicy'
        $d[0].Reason | Should -Be 'dropped by policy' -Because 'the reason is reasons.h''s, as calico-bpf prints it'
        $d[0].Count | Should -Be 5
        ($d[0].End - $d[0].Start).TotalSeconds | Should -BeGreaterThan 2.5
        # Which rule: the deny rule whose hit counter rose by the same packets in the same window.
        $d[0].Tier | Should -Be 'default'
        $d[0].Policy | Should -Be 'shop/knp.default.deny-all'
        $d[0].RuleIndex | Should -Be 0
        $d[0].RuleHits | Should -Be 5
        @($d[0].Rules) | Should -Be @('default/shop/knp.default.deny-all[0] +5')
        # The program's own lines for the newest three dropped packets, each from New packet to its DENY.
        @($d[0].TraceLines | Where-Object { $_ -like '*: New packet at ifindex=*' }).Count | Should -Be 3 -Because "the newest three of the five packets are in the window (verbose: $($r.Verbose -join '; '))"
        @($d[0].TraceLines | Where-Object { $_ -like '*: DENY due to policy' }).Count | Should -Be 3
        @($d[0].TraceLines | Where-Object { $_ -like '*: IP s=10.198.7.2 d=10.198.7.1' }).Count | Should -Be 3
        $d[0].Workload | Should -Be 'shop/client-0' -Because 'the workload route of 10.198.7.2 goes to the interface'
        @($d[0].Peers) | Should -Be @('shop/client-0', '10.198.7.1')
        ($d[0] | Out-String -Width 120) | Should -Match 'default/shop/knp\.default\.deny-all\[0\]'
        foreach ($width in 80, 120) {
            $text = $d[0] | Out-String -Width $width
            foreach ($line in $text -split "`r?`n") { $line.TrimEnd().Length | Should -BeLessOrEqual $width }
            $text | Should -Match '(?m)^Interface\s+Hook\s+Reason\s+Count\s+Rate\s+Policy\s*$'
        }
    }

    It 'Get-BpfDrop finds the dropped packets'' trace lines when the trace buffer''s clock is not the monotonic one' {
        # A virtual machine's sched_clock (trace_clock "local") may be seconds from CLOCK_MONOTONIC; "tai" is
        # decades from it. The window's edges move onto the buffer's clock by its "now ts", or no line is chosen.
        $clockFile = '/sys/kernel/tracing/trace_clock'
        $before = [regex]::Match((Get-Content -Raw $clockFile), '\[(\w+)\]').Groups[1].Value
        try {
            Set-Content $clockFile tai
            $offset = [CalicoBpf.Interop.TraceFs]::ClockOffset('/sys/kernel/tracing')
            $wall = ([DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds() * 1e6) - [CalicoBpf.Interop.KernelInfo]::MonotonicNanoseconds()
            [math]::Abs($offset - $wall) / 1e9 | Should -BeLessThan 60 -Because 'CLOCK_TAI is the wall clock and a few leap seconds'
            $r = Invoke-DropWindow 4
            $d = @($r.Samples)
            $d.Count | Should -Be 1
            $d[0].Count | Should -Be 4
            @($d[0].TraceLines | Where-Object { $_ -like '*: New packet at ifindex=*' }).Count | Should -Be 3 -Because "the newest three of the four packets are in the window (verbose: $($r.Verbose -join '; '))"
            @($d[0].TraceLines | Where-Object { $_ -like '*: DENY due to policy' }).Count | Should -Be 3
            # Get-BpfTraceLog's Time is a line's stamp moved onto the monotonic clock: a line written two
            # seconds before the read is two seconds old (a tai stamp read as monotonic is clamped to now).
            $mark = "cbpf-tai-$PID"
            $written = [DateTime]::UtcNow
            Add-TraceMark $mark
            Start-Sleep -Seconds 2
            $line = Get-BpfTraceLog -TracingPath /sys/kernel/tracing 3>$null | Where-Object Message -match $mark | Select-Object -Last 1
            $line | Should -Not -BeNullOrEmpty
            ($line.Time - $written).Duration().TotalSeconds | Should -BeLessThan 1
        }
        finally { Set-Content $clockFile $before }
    }

    It 'Get-BpfDrop writes nothing for a window without drops; -Follow streams windows and stops on Ctrl+C' {
        $r = Complete-Sampling (Start-Sampling "Get-BpfDrop $local -PolicyDebugPath '$policyDir' -Window 1")
        $r.Errors | Should -BeNullOrEmpty
        $r.Samples | Should -BeNullOrEmpty
        $run = Start-Sampling "Get-BpfDrop $local -PolicyDebugPath '$policyDir' -Window 1 -Follow"
        Wait-Baseline $run
        Send-Datagram $ns 10.198.7.1 2
        $deadline = [DateTime]::UtcNow.AddSeconds(10)
        while ($run.Out.Count -eq 0 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $run.PS.Stop()
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 1
        $out = @($run.Out)
        $run.PS.Dispose()
        ($out | Measure-Object Count -Sum).Sum | Should -Be 2
    }

    It 'Watch-BpfConntrack streams the flows that are new and gone, with Get-BpfConntrack''s filters' {
        $ct = Get-ConntrackPin $fs.PinPath
        $old = New-Flow 10.198.9.1:40000 10.198.9.2:80
        $null = [CalicoBpf.Simulation.SimulatedDataplane]::WriteConntrackPinned($ct, $old, $false)
        $run = Start-Sampling "Watch-BpfConntrack -PinPath '$($fs.PinPath)' -Address 10.198.9.0/24 -MaxSamples 3"
        Wait-Baseline $run
        $null = [CalicoBpf.Simulation.SimulatedDataplane]::WriteConntrackPinned($ct, (New-Flow 10.198.9.1:40001 10.198.9.2:443 -Service 10.96.0.44:443), $false)
        $null = [CalicoBpf.Simulation.SimulatedDataplane]::WriteConntrackPinned($ct, (New-Flow 10.199.9.1:40002 10.199.9.2:80), $false)
        $null = [CalicoBpf.Simulation.SimulatedDataplane]::WriteConntrackPinned($ct, $old, $true)
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $r.Samples[0] | Should -BeOfType ([CalicoBpf.ConntrackChange])
        $seen = @($r.Samples | ForEach-Object { "$($_.Change) $($_.Type) $($_.Source)" } | Sort-Object)
        # The NAT'd flow is its two entries; the flow outside -Address is not watched; the removed one is gone.
        $seen | Should -Be @('Expired Normal 10.198.9.1:40000', 'New NatForward 10.198.9.1:40001', 'New NatReverse 10.198.9.1:40001')
        ($r.Samples | Where-Object Change -eq Expired).Entry | Should -BeOfType ([CalicoBpf.ConntrackEntry])
        @($r.Samples.Sample | Sort-Object -Unique).Count | Should -Be 1 -Because 'all three changes happened between two samples'
        foreach ($width in 80, 120) {
            $text = $r.Samples | Out-String -Width $width
            foreach ($line in $text -split "`r?`n") { $line.TrimEnd().Length | Should -BeLessOrEqual $width }
            $text | Should -Match '(?m)^Change\s+Protocol\s+Source\s+Destination\s+Type\s+State\s*$'
        }
    }

    It 'Watch-BpfConntrack stops on Ctrl+C within a second' {
        $run = Start-Sampling "Watch-BpfConntrack -PinPath '$($fs.PinPath)' -SampleInterval 30"
        Start-Sleep -Milliseconds 500
        $sw = [Diagnostics.Stopwatch]::StartNew()
        $run.PS.Stop()
        $sw.Elapsed.TotalSeconds | Should -BeLessThan 1
        $run.PS.Dispose()
    }

    It 'Get-BpfProgramStatistic counts each packet as one run of the hook''s program, and leaves the kernel''s statistics as they were' {
        $before = (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim()
        $run = Start-Sampling "Get-BpfProgramStatistic -Interface $host_ -Window 3 -All"
        $deadline = [DateTime]::UtcNow.AddSeconds(15)
        while (-not @($run.PS.Streams.Verbose | Where-Object { "$_" -like 'Turning the kernel*' }) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
        Start-Sleep -Milliseconds 300
        Send-Datagram $ns 10.198.7.1 4
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $s = @($r.Samples)
        $s.Count | Should -Be 1
        $s[0] | Should -BeOfType ([CalicoBpf.ProgramStatistic])
        ($s[0].Interface, $s[0].Hook, $s[0].Kind, $s[0].Runs) | Should -Be @($host_, 'Ingress', 'TC', 4)
        $s[0].ProgramName | Should -Be 'count_like_cali'
        $s[0].AverageNanoseconds | Should -BeGreaterThan 0
        $s[0].WindowValue.TotalSeconds | Should -BeGreaterThan 1.9
        (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() | Should -Be $before
        # Calico's programs only by default: the tests' program is not one.
        @(Get-BpfProgramStatistic -Interface $host_ -Window 1) | Should -BeNullOrEmpty
        # -WhatIf turns nothing on and measures nothing.
        @(Get-BpfProgramStatistic -Interface $host_ -All -WhatIf) | Should -BeNullOrEmpty
        # Felix's profiling map is not there (bpfProfiling off): nothing, no error.
        @(Get-BpfProgramStatistic -PinPath $fs.PinPath -FelixProfiling -ErrorAction Stop) | Should -BeNullOrEmpty
        foreach ($width in 80, 120) {
            $text = $s | Out-String -Width $width
            foreach ($line in $text -split "`r?`n") { $line.TrimEnd().Length | Should -BeLessOrEqual $width }
            $text | Should -Match '(?m)^Interface\s+Hook\s+ProgramName\s+Runs\s+RunsPerSecond\s+AverageNanoseconds\s*$'
        }
    }

    It 'Export-BpfMetric writes the counters, drops, rule hits and map fill as Prometheus text, to a file whole, and -WhatIf writes nothing' {
        Send-Datagram $ns 10.198.7.1 2
        $counters = @(Get-BpfCounter -PinPath $fs.PinPath -Interface $host_)
        $text = Export-BpfMetric -PinPath $fs.PinPath -PolicyDebugPath $policyDir
        $text | Should -BeOfType [string]
        $node = $counters[0].Node
        $total = ($counters | Where-Object Id -eq TotalPackets).Ingress
        $text | Should -Match ([regex]::Escape("calicobpf_interface_packets_total{node=`"$node`",interface=`"$host_`",hook=`"ingress`",category=`"total`",counter=`"TotalPackets`"} $total") + '\n')
        $dropped = ($counters | Where-Object Id -eq DroppedByPolicy).Ingress
        $text | Should -Match ([regex]::Escape("calicobpf_dropped_packets_total{node=`"$node`",interface=`"$host_`",hook=`"ingress`",reason=`"dropped by policy`"} $dropped") + '\n')
        $hits = (Get-BpfPolicy -PinPath $fs.PinPath -PolicyDebugPath $policyDir | Where-Object MatchId -eq $ruleId).HitCount
        $text | Should -Match ([regex]::Escape("action=`"deny`",match_id=`"$ruleId`"} $hits") + '\n')
        $ct = Get-BpfMap -PinPath $fs.PinPath cali_v4_ct4
        $ratio = [double]([regex]::Match($text, 'calicobpf_map_fill_ratio\{node="[^"]+",map="cali_v4_ct4"\} (\S+)\n').Groups[1].Value)
        $ratio | Should -Be ($ct.Entries / $ct.MaxEntries)
        $file = Join-Path $TestDrive 'calicobpf.prom'
        Export-BpfMetric -PinPath $fs.PinPath -PolicyDebugPath $policyDir -Path $file
        (Get-Content -Raw $file) | Should -Match '^# HELP calicobpf_interface_packets_total '
        @(Get-ChildItem -Force $TestDrive -Filter '.calicobpf.prom.*') | Should -BeNullOrEmpty -Because 'the file is written next to it, then renamed'
        $other = Join-Path $TestDrive 'whatif.prom'
        Export-BpfMetric -PinPath $fs.PinPath -Path $other -WhatIf
        $other | Should -Not -Exist
    }

    It 'refuses -Continuous with -MaxSamples, and a zero interval' {
        { Get-BpfCounter -PinPath $fs.PinPath -Continuous -MaxSamples 2 -ErrorAction Stop } | Should -Throw -ErrorId 'AmbiguousParameterSet,CalicoBpf.Commands.GetBpfCounterCommand'
        { Get-BpfCounter -PinPath $fs.PinPath -SampleInterval 0 -ErrorAction Stop } | Should -Throw -ErrorId 'ParameterArgumentValidationError,CalicoBpf.Commands.GetBpfCounterCommand'
        { Get-BpfDrop -PinPath $fs.PinPath -Window 0.5 -ErrorAction Stop } | Should -Throw -ErrorId 'WindowOutOfRange,CalicoBpf.Commands.GetBpfDropCommand'
    }
}

Describe 'Sampled counters on cluster nodes' -Skip:(-not ($kernel -and $clang)) {
    BeforeAll {
        $kc = $cluster.Kubeconfig
        $fs = New-TestBpfFs
        # smp-a's node: its network namespace and bpffs as the test cluster made them.
        $netns = "cbk-$($cluster.RunId)-smp-a"
        $pins = "/tmp/cbk-$($cluster.RunId)-smp-a/bpffs/tc/globals"
        $iface = 'cali5a3e1d0c0f1'
        $peer = (& ip -n $netns -j link show $iface | ConvertFrom-Json).link
        & ip netns exec $netns sysctl -qw "net.ipv6.conf.$iface.disable_ipv6=1" "net.ipv6.conf.$peer.disable_ipv6=1"
        & ip -n $netns link set $peer up
        & ip -n $netns route add 10.198.8.2/32 dev $peer
        $mac = (& ip -n $netns -j link show $iface | ConvertFrom-Json).address
        & ip -n $netns neigh add 10.198.8.2 lladdr $mac dev $peer
        # A workload interface: its TC ingress program (from the pod) tags its lines -E.
        Add-CountingProgram -Netns $netns -Interface $iface -PinPath $pins -ProgramPin (Join-Path $fs.Root 'count') -Tag E
    }
    AfterAll {
        Remove-TestBpfFs $fs
    }

    It 'samples every node on one clock; the packets show on the node they reached, through its calico-node container' {
        $run = Start-Sampling "Get-BpfCounter -Kubeconfig '$kc' -Node * -SampleInterval 1 -MaxSamples 3 -IncludeUnchanged"
        Wait-Sample $run 1
        Send-Datagram $netns 10.198.8.2 6
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        @($r.Samples.Node | Sort-Object -Unique) | Should -Be @('smp-a', 'smp-b')
        Test-Counted $r.Samples 6 smp-a $iface
        @($r.Samples | Where-Object { $_.Node -eq 'smp-b' -and $_.Delta -gt 0 }) | Should -BeNullOrEmpty
        # One clock: both nodes' rows of a sample share its time; the nodes come in name order.
        foreach ($n in 1..3) {
            $rows = @($r.Samples | Where-Object Sample -eq $n)
            @($rows.Timestamp | Sort-Object -Unique).Count | Should -Be 1
            $order = @($rows.Node | Get-Unique)
            $order | Should -Be @('smp-a', 'smp-b')
        }
        Test-Rates $r.Samples
        # The remote objects are the local ones: the same rise as a local read of smp-a's pins would give.
        ($r.Samples | Where-Object { $_.Node -eq 'smp-a' -and $_.Sample -eq 3 -and $_.Id -eq 'TotalPackets' -and $_.Hook -eq 'Ingress' }).Value | Should -Be (100 + 6)
    }

    It 'Get-BpfPolicy -Node samples the rule hits of the node that denied' {
        $run = Start-Sampling "Get-BpfPolicy -Kubeconfig '$kc' -Node smp-a, smp-b -SampleInterval 1 -MaxSamples 2"
        Wait-Baseline $run
        Send-Datagram $netns 10.198.8.2 4
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        ($r.Samples | Where-Object { $_.Node -eq 'smp-a' -and $_.MatchId -eq $ruleId } | Measure-Object Delta -Sum).Sum | Should -Be 4
        @($r.Samples | Where-Object Node -eq 'smp-b') | Should -BeNullOrEmpty -Because 'nothing hit smp-b''s rule'
    }

    It 'Get-BpfDrop -Node * names the node, the rule and the pod; where calico-node has no tracefs it says so and goes on' {
        $run = Start-Sampling "Get-BpfDrop -Kubeconfig '$kc' -Node * -Window 3 -Resolve -Verbose"
        Wait-Baseline $run
        Send-Datagram $netns 10.198.8.2 4
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $d = @($r.Samples)
        $d.Count | Should -Be 1 -Because 'only smp-a dropped'
        $d[0].Node | Should -Be 'smp-a'
        $d[0].Interface | Should -Be $iface
        $d[0].Count | Should -Be 4
        $d[0].Policy | Should -Be 'shop/knp.default.deny-all'
        $d[0].RuleHits | Should -Be 4
        $d[0].Workload | Should -Be 'shop/web-0'
        $d[0].TraceLines | Should -BeNullOrEmpty
        @($r.Verbose | Where-Object { "$_" -like 'smp-a: No trace lines for the drops: *no tracefs*' }).Count | Should -Be 1
    }

    It 'a bundle keeps a window: Get-BpfDrop and Get-BpfProgramStatistic -Bundle give offline what the export''s window saw, as live' {
        $zip = Join-Path $TestDrive 'window.zip'
        $before = (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim()
        $run = Start-Sampling "Export-CalicoBpfDiagnostic -Kubeconfig '$kc' -Node * -Path '$zip' -Window 3 -MeasurePrograms -NoCheck -Verbose"
        $deadline = [DateTime]::UtcNow.AddSeconds(30)
        while (@($run.PS.Streams.Verbose | Where-Object { "$_" -like '*smp-a*window begins*' }).Count -eq 0 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
        # The programs are measured inside the window: from when the node turns the statistics on.
        while ((Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() -ne '1' -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
        Start-Sleep -Milliseconds 300
        Send-Datagram $netns 10.198.8.2 4
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $d = @(Get-BpfDrop -Bundle $zip -Resolve)
        $d.Count | Should -Be 1 -Because 'only smp-a dropped'
        ($d[0].Node, $d[0].Interface, $d[0].Count, $d[0].Policy, $d[0].RuleHits, $d[0].Workload) | Should -Be @('smp-a', $iface, 4, 'shop/knp.default.deny-all', 4, 'shop/web-0')
        ($d[0].End - $d[0].Start).TotalSeconds | Should -BeGreaterOrEqual 3 -Because 'the window lasts -Window at least'
        # The same window read twice gives the same objects: it is the bundle's, not the clock's.
        (@(Get-BpfDrop -Bundle $zip -Resolve) | ConvertTo-Json -Depth 4) | Should -Be ($d | ConvertTo-Json -Depth 4)
        # -MeasurePrograms: the interface's program ran once per datagram in the window; the kernel's setting is back.
        $p = @(Get-BpfProgramStatistic -Bundle $zip -Node smp-a -All | Where-Object Interface -eq $iface)
        ($p.Count, $p[0].Hook, $p[0].Runs) | Should -Be @(1, 'Ingress', 4)
        (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() | Should -Be $before
        # A bundle made without it says so.
        $plain = Join-Path $TestDrive 'plain.zip'
        $null = Export-CalicoBpfDiagnostic -Kubeconfig $kc -Node smp-a -Path $plain -Window 1 -NoCheck
        $null = Get-BpfProgramStatistic -Bundle $plain -Node smp-a -All -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].Exception.Message | Should -BeLike '*made without -MeasurePrograms*'
    }

    It 'Watch-BpfConntrack -Node follows each node''s table; -Resolve names the pods' {
        $ct = Get-ConntrackPin $pins
        $run = Start-Sampling "Watch-BpfConntrack -Kubeconfig '$kc' -Node * -Address 10.65.5.7 -MaxSamples 2 -Resolve"
        Wait-Baseline $run
        $null = [CalicoBpf.Simulation.SimulatedDataplane]::WriteConntrackPinned($ct, (New-Flow 10.198.7.2:41000 10.65.5.7:8080), $false)
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $c = @($r.Samples)
        $c.Count | Should -Be 1
        $c[0].Node | Should -Be 'smp-a'
        $c[0].Change | Should -Be 'New'
        $c[0].SourcePod | Should -Be 'shop/client-0'
        $c[0].DestinationPod | Should -Be 'shop/web-0'
        $c[0].PSObject.TypeNames[0] | Should -Be 'CalicoBpf.ConntrackChange#Resolved'
        ($c[0] | Out-String -Width 120) | Should -Match 'New\s+shop/client-0'
    }

    It 'Get-BpfProgramStatistic -Node measures through calico-node''s bpftool, and Ctrl+C puts the kernel''s statistics back' {
        $before = (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim()
        $run = Start-Sampling "Get-BpfProgramStatistic -Kubeconfig '$kc' -Node smp-a -Window 3 -All"
        # The node's script sets the setting just before its first reading.
        $deadline = [DateTime]::UtcNow.AddSeconds(15)
        while ((Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() -ne '1' -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
        Start-Sleep -Milliseconds 300
        Send-Datagram $netns 10.198.8.2 6
        $r = Complete-Sampling $run
        $r.Errors | Should -BeNullOrEmpty
        $s = @($r.Samples | Where-Object Interface -eq $iface)
        $s.Count | Should -Be 1
        ($s[0].Node, $s[0].Hook, $s[0].Runs) | Should -Be @('smp-a', 'Ingress', 6)
        (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() | Should -Be $before

        $run = Start-Sampling "Get-BpfProgramStatistic -Kubeconfig '$kc' -Node smp-a -Window 60 -All"
        $deadline = [DateTime]::UtcNow.AddSeconds(15)
        while ((Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() -ne '1' -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        $on = (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim()
        Stop-Sampling $run | Should -BeLessThan 1
        $on | Should -Be '1' -Because 'the statistics are on during the window'

        $deadline = [DateTime]::UtcNow.AddSeconds(5)
        while ((Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() -ne $before -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
        (Get-Content /proc/sys/kernel/bpf_stats_enabled).Trim() | Should -Be $before -Because 'the node puts the setting back when the exec ends'
        Wait-NodeIdle $cluster smp-a | Should -BeNullOrEmpty
    }

    It 'Export-BpfMetric -Node * holds every node''s families once, nodes in name order' {
        $text = Export-BpfMetric -Kubeconfig $kc -Node *
        @([regex]::Matches($text, '(?m)^# TYPE calicobpf_interface_packets_total counter$')).Count | Should -Be 1
        $text | Should -Match 'calicobpf_interface_packets_total\{node="smp-a",interface="cali5a3e1d0c0f1",hook="ingress",category="total",counter="TotalPackets"\} \d+'
        $text | Should -Match 'calicobpf_policy_rule_hits_total\{node="smp-b",tier="default",policy="shop/knp.default.allow-web",rule="0",action="allow",match_id="24123"\} 40'
        $text.IndexOf('node="smp-a"') | Should -BeLessThan $text.IndexOf('node="smp-b"')
    }

    It 'Ctrl+C on <_> -Node * stops within a second and leaves nothing running on the nodes' -ForEach @(
        'Get-BpfCounter -Continuous -IncludeUnchanged', 'Get-BpfDrop -Follow -Window 2', 'Watch-BpfConntrack -SampleInterval 2', 'Get-BpfPolicy -Continuous -IncludeUnchanged') {
        $run = Start-Sampling "$_ -Kubeconfig '$kc' -Node *"
        try { Wait-Baseline $run; Start-Sleep -Milliseconds 300 }
        finally { $stopped = Stop-Sampling $run }
        $stopped | Should -BeLessThan 1
        Wait-NodeIdle $cluster smp-a | Should -BeNullOrEmpty
        Wait-NodeIdle $cluster smp-b | Should -BeNullOrEmpty
        Get-CalicoBpfThread | Should -BeNullOrEmpty
    }
}
