# On this machine: Get-BpfMap, Get-BpfConntrack and Get-BpfCounter on real BPF maps in a private bpffs, seeded through the simulator; errors of parameters in the wrong places.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    $manifestPath = Import-ModuleUnderTest -Simulation -PassThru
    $fs = $null
    if (Test-KernelAvailable) {
        $fs = New-TestBpfFs
        $scenario = [CalicoBpf.Simulation.NodeScenario]::Parse(@'
node: pester-node
randomSeed: 5
conntrack: { tcp: 60, udp: 20, icmp: 4, services: 15, nodePorts: 6 }
interfaces:
  - name: lo
    ingress: { TotalPackets: 5000, AcceptedByPolicy: 4900, DroppedByPolicy: 77, DroppedIPMalformed: 2 }
    egress: { TotalPackets: 4000, AcceptedByPolicy: 4000 }
'@)
        $links = [System.Collections.Generic.Dictionary[string, int]]::new()
        $links['lo'] = 1
        $sim = [CalicoBpf.Simulation.SimulatedDataplane]::Claim($fs.PinPath)
        try {
            $scenario.Seed($sim, $links)
            # An interface that has gone away since Felix attached to it.
            $gone = [System.Collections.Generic.Dictionary[int, uint64]]::new()
            $gone[5] = 9
            $sim.WriteCounters($sim.Map('cali_counters6'), 4242, 0, $gone)
        } finally { $sim.Dispose() }
        $expected = 60 + 20 + 4 + 2 * (15 + 6)
        $PSDefaultParameterValues['*-Bpf*:PinPath'] = $fs.PinPath
    }
}

AfterAll {
    $PSDefaultParameterValues.Remove('*-Bpf*:PinPath')
    Remove-TestBpfFs $fs
}

Describe 'Get-BpfMap' -Skip:(-not $kernel) {
    It 'lists Calico maps with sizes and fill' {
        $maps = Get-BpfMap
        $maps | Should -Not -BeNullOrEmpty
        $maps[0] | Should -BeOfType ([CalicoBpf.MapInfo])
        $ct = $maps | Where-Object Name -eq 'cali_v4_ct4'
        $ct.Entries | Should -Be $expected
        $ct.MaxEntries | Should -Be 512000
        $ct.Node | Should -Be ($env:NODENAME ? $env:NODENAME : [System.Net.Dns]::GetHostName()) -Because 'Node is NODENAME or the host name'
        $ct.FillPercent | Should -Be ([math]::Round(100 * $expected / 512000, 1))
    }

    It 'gives an array no fill: its slots all exist from the start, so it is never full' {
        $arrays = New-TestBpfFs
        try {
            $state = [CalicoBpf.Interop.BpfMap]::Create('PerCpuArray', 4, 8, 2, 'cali_state6', 0)
            try { $state.Pin((Join-Path $arrays.PinPath 'cali_state6')) } finally { $state.Dispose() }
            $m = Get-BpfMap -PinPath $arrays.PinPath cali_state6
            $m.Entries | Should -Be 2
            $m.FillPercent | Should -BeNullOrEmpty
            @(Get-BpfMap -PinPath $arrays.PinPath | Where-Object FillPercent -gt 90).Count | Should -Be 0   # about_CalicoBpf's own example
        }
        finally { Remove-TestBpfFs $arrays }
    }

    It 'filters by pin or base name with wildcards' {
        (Get-BpfMap cali_v4_ct*).Name | Should -Be @('cali_v4_ct4')
        (Get-BpfMap cali_counters).Name | Should -Be @('cali_counters6')
        Get-BpfMap -NoCount cali_v4_ct4 | ForEach-Object Entries | Should -BeNullOrEmpty
    }

    It 'reports a missing map by name as a non-terminating error' {
        $r = Get-BpfMap cali_nothing -ErrorVariable err -ErrorAction SilentlyContinue
        $r | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'MapNotFound,*'
        $err[0].CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }
}

# Before Get-BpfConntrack's tests: one of them removes the IPv6 table.
Describe 'Get-BpfConntrackStatistic' -Skip:(-not $kernel) {
    It 'counts the table as calico-bpf conntrack stats counts the decoded entries' {
        $s = Get-BpfConntrackStatistic
        $s | Should -BeOfType ([CalicoBpf.ConntrackStatistic])
        $all = @(Get-BpfConntrack)
        $connections = @($all | Where-Object Type -ne 'NatForward')
        $tcp = @($connections | Where-Object Protocol -eq 'Tcp')
        $s.Entries | Should -Be $expected
        $s.Entries | Should -Be $all.Count
        $s.NatConnections | Should -Be @($all | Where-Object Type -eq 'NatForward').Count
        $s.Connections | Should -Be $connections.Count
        $s.Normal | Should -Be @($all | Where-Object Type -eq 'Normal').Count
        $s.NatReverse | Should -Be @($all | Where-Object Type -eq 'NatReverse').Count
        $s.Tcp | Should -Be $tcp.Count
        $s.Udp | Should -Be @($connections | Where-Object Protocol -eq 'Udp').Count
        $s.Other | Should -Be @($connections | Where-Object Protocol -notin 'Tcp', 'Udp').Count
        $s.Other | Should -BeGreaterThan 0 -Because 'the scenario has ICMP entries'
        foreach ($state in 'Established', 'Closed', 'Reset', 'SynSent') {
            $s."Tcp$state" | Should -Be @($tcp | Where-Object State -eq $state).Count -Because "Tcp$state counts the TCP connections in state $state"
        }
        ($s.TcpEstablished + $s.TcpClosed + $s.TcpReset + $s.TcpSynSent) | Should -Be $s.Tcp
        ($s.MapName, $s.MapVersion, $s.MaxEntries, $s.PinPath) | Should -Be @('cali_v4_ct4', 4, 512000, $fs.PinPath)
        $s.Fill | Should -Be (100.0 * $expected / 512000)
        $s.Node | Should -Be $all[0].Node
        $s.Release | Should -Be $all[0].Release
    }

    It 'counts the IPv6 table with -IPv6' {
        $s = Get-BpfConntrackStatistic -IPv6
        ($s.MapName, $s.Entries, $s.Connections, $s.Fill) | Should -Be @('cali_v6_ct4', 0, 0, 0)
        $s.MaxEntries | Should -BeGreaterThan 0
    }

    It 'renders one row per node: the counts in 80 columns, the TCP states in the TcpState view' {
        $s = Get-BpfConntrackStatistic
        foreach ($view in @{ Text = $s | Out-String -Width 80; Values = @($s.Entries, ('{0:0.0}' -f $s.Fill), $s.Connections, $s.NatConnections, $s.Tcp, $s.Udp, $s.Other)
                Header = 'Node\s+Entries\s+Fill\s+Connections\s+NatConnections\s+Tcp\s+Udp\s+Other' },
            @{ Text = $s | Format-Table -View TcpState | Out-String -Width 80; Values = @($s.Tcp, $s.TcpEstablished, $s.TcpClosed, $s.TcpReset, $s.TcpSynSent)
                Header = 'Node\s+Tcp\s+TcpEstablished\s+TcpClosed\s+TcpReset\s+TcpSynSent' }) {
            $lines = @($view.Text -split "`r?`n" | Where-Object { $_.Trim() })
            $lines | ForEach-Object { $_.TrimEnd().Length | Should -BeLessOrEqual 80 }
            $lines.Count | Should -Be 3 -Because 'a header, its rule and one row'
            $lines[0].TrimEnd() | Should -Match "^$($view.Header)$"
            -split $lines[2] | Select-Object -Skip 1 | Should -Be @($view.Values | ForEach-Object { "$_" })
        }
        # At 120 columns, the same: nothing squeezed in beside the counts.
        function Rows([int] $Width) { @(($s | Out-String -Width $Width) -split "`r?`n" | ForEach-Object TrimEnd | Where-Object { $_ }) }
        Rows 120 | Should -Be (Rows 80)
    }

    It 'says when the node has no such table, naming it' {
        $empty = New-TestBpfFs
        try {
            $arp = [CalicoBpf.Interop.BpfMap]::Create('LruHash', 8, 12, 16, 'cali_v4_arp2', 0)
            try { $arp.Pin((Join-Path $empty.PinPath 'cali_v4_arp2')) } finally { $arp.Dispose() }
            $err = $null
            try { Get-BpfConntrackStatistic -PinPath $empty.PinPath -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'MapNotFound,CalicoBpf.Commands.GetBpfConntrackStatisticCommand'
            $err.Exception.Message | Should -Match 'No IPv4 conntrack map \(cali_v4_ct\)'
        }
        finally { Remove-TestBpfFs $empty }
    }
}

Describe 'Get-BpfConntrack' -Skip:(-not $kernel) {
    BeforeAll { $all = @(Get-BpfConntrack) }

    It 'returns every entry as a ConntrackEntry' {
        $all.Count | Should -Be $expected
        $all[0] | Should -BeOfType ([CalicoBpf.ConntrackEntry])
        ($all | Group-Object Type -NoElement | Sort-Object Name | ForEach-Object { "$($_.Name)=$($_.Count)" }) -join ' ' |
            Should -Be "NatForward=21 NatReverse=21 Normal=84"
    }

    It 'applies <Filter> while reading exactly as Where-Object would' -ForEach @(
        @{ Filter = '-Protocol Udp'; Params = @{ Protocol = 'Udp' }; Where = { $_.Protocol -eq 'Udp' } }
        @{ Filter = '-Type NatReverse'; Params = @{ Type = 'NatReverse' }; Where = { $_.Type -eq 'NatReverse' } }
        @{ Filter = '-State Established,Reset'; Params = @{ State = 'Established', 'Reset' }; Where = { $_.State -in 'Established', 'Reset' } }
        @{ Filter = '-Port 8080'; Params = @{ Port = 8080 }; Where = { $_.SourcePort -eq 8080 -or $_.DestinationPort -eq 8080 -or ($_.Type -eq 'NatReverse' -and $_.ServicePort -eq 8080) } }
    ) {
        $want = @($all | Where-Object $Where | ForEach-Object { "$($_.Protocol) $($_.Source) $($_.Destination) $($_.Type)" } | Sort-Object)
        $got = @(Get-BpfConntrack @Params | ForEach-Object { "$($_.Protocol) $($_.Source) $($_.Destination) $($_.Type)" } | Sort-Object)
        $want.Count | Should -BeGreaterThan 0
        $got | Should -Be $want
    }

    It 'applies -OlderThan while reading' {
        # Ages grow while the test runs: take a threshold in the middle of the widest gap between ages.
        $ages = $all.AgeValue | Sort-Object
        $gap = 1..($ages.Count - 1) | Sort-Object { ($ages[$_] - $ages[$_ - 1]).Ticks } -Descending | Select-Object -First 1
        $threshold = $ages[$gap - 1] + [timespan]::FromTicks(($ages[$gap] - $ages[$gap - 1]).Ticks / 2)
        $want = @($all | Where-Object AgeValue -gt $threshold | ForEach-Object { "$($_.Source) $($_.Type)" } | Sort-Object)
        @(Get-BpfConntrack -OlderThan $threshold | ForEach-Object { "$($_.Source) $($_.Type)" } | Sort-Object) | Should -Be $want
        $want.Count | Should -BeGreaterThan 0
    }

    It 'takes states, protocols and durations as the tables and calico-bpf write them' {
        function Ids($entries) { @($entries | ForEach-Object { "$($_.Protocol) $($_.Source) $($_.Destination) $($_.Type)" } | Sort-Object) }
        $synSent = Ids ($all | Where-Object State -eq 'SynSent')
        $synSent.Count | Should -BeGreaterThan 0
        Ids (Get-BpfConntrack -State SYN-SENT) | Should -Be $synSent
        Ids (Get-BpfConntrack -State syn-sent, SynSent) | Should -Be $synSent
        Ids (Get-BpfConntrack -Protocol 17) | Should -Be (Ids (Get-BpfConntrack -Protocol Udp))
        Ids (Get-BpfConntrack -Protocol tcp, 17) | Should -Be (Ids ($all | Where-Object Protocol -in 'Tcp', 'Udp'))
        @(Get-BpfConntrack -Protocol 200 -ErrorAction Stop).Count | Should -Be 0   # a number with no name: nothing, no error
        # A threshold in whole seconds in the widest gap between the ages (they grow while the test runs).
        $ages = $all.AgeValue | Sort-Object
        $gap = 1..($ages.Count - 1) | Sort-Object { ($ages[$_] - $ages[$_ - 1]).Ticks } -Descending | Select-Object -First 1
        $seconds = [math]::Ceiling(($ages[$gap - 1] + [timespan]::FromTicks(($ages[$gap] - $ages[$gap - 1]).Ticks / 2)).TotalSeconds)
        $old = Ids ($all | Where-Object AgeValue -gt ([timespan]::FromSeconds($seconds)))
        $old.Count | Should -BeGreaterThan 0
        Ids (Get-BpfConntrack -OlderThan "$($seconds)s") | Should -Be $old
        Ids (Get-BpfConntrack -OlderThan $seconds) | Should -Be $old
        Ids (Get-BpfConntrack -OlderThan ([timespan]::FromSeconds($seconds)).ToString()) | Should -Be $old
        Ids (Get-BpfConntrack -OlderThan "$([math]::Floor($seconds / 60))m$($seconds % 60)s") | Should -Be $old
        # The threshold as the table shows it (ShortDuration) selects exactly the same entries.
        $shown = [CalicoBpf.ConntrackText]::ShortDuration([timespan]::FromSeconds($seconds))
        Ids (Get-BpfConntrack -OlderThan $shown) | Should -Be $old -Because "$seconds s is shown as $shown"
        # Unquoted, 90s reaches the cmdlet as the Int16 90 (seconds, as meant); 2d as the decimal 2, refused.
        # The command is parsed as typed (the threshold in the gap between ages, not a fixed 90 an entry may be crossing).
        Ids (Invoke-Expression "Get-BpfConntrack -OlderThan $($seconds)s") | Should -Be $old
        { Get-BpfConntrack -OlderThan 2d -ErrorAction Stop } | Should -Throw -ExpectedMessage "*PowerShell reads 2d unquoted as the decimal 2*'2d'*"
        # A comma is a list to PowerShell, never OR-ed flags: 'tcp,udp' is refused, not protocol 23.
        { Get-BpfConntrack -Protocol 'tcp,udp' -ErrorAction Stop } | Should -Throw -ExpectedMessage "*'tcp,udp' is not an IP protocol*"
        { Get-BpfConntrack -Protocol Proto-tcp -ErrorAction Stop } | Should -Throw
        { Get-BpfConntrack -State 'SynSent,Established' -ErrorAction Stop } | Should -Throw
        # What it does not take, it says, naming the forms it takes.
        { Get-BpfConntrack -State SYN-RECV -ErrorAction Stop } | Should -Throw -ExpectedMessage '*SYN-SENT, ESTABLISHED, CLOSED, RESET*'
        { Get-BpfConntrack -Protocol 300 -ErrorAction Stop } | Should -Throw -ExpectedMessage '*a number from 0 to 255*'
        { Get-BpfConntrack -OlderThan 5 minutes -ErrorAction Stop } | Should -Throw
        { Get-BpfConntrack -OlderThan soon -ErrorAction Stop } | Should -Throw -ExpectedMessage '*5m, 1h30m, 90s or 1500ms*'
        # Every age the tables show is taken back as it is shown (ShortDuration), days included.
        foreach ($shown in '850ms', '8.3s', '42s', '11m08s', '3h05m', '2d04h', '2d') {
            { Get-BpfConntrack -OlderThan $shown -ErrorAction Stop } | Should -Not -Throw -Because "the tables show ages as $shown"
        }
        @(Get-BpfConntrack -OlderThan 2d04h).Count | Should -Be 0
        # Every state and protocol the tables show is taken as -State and -Protocol.
        foreach ($state in [Enum]::GetValues([CalicoBpf.TcpState])) {
            $text = [CalicoBpf.ConntrackText]::StateText($state)
            if ($text) {
                Ids (Get-BpfConntrack -State $text -ErrorAction Stop) | Should -Be (Ids ($all | Where-Object State -eq $state)) -Because "the table shows $state as $text"
            }
        }
        foreach ($n in 0..255) {
            $text = [CalicoBpf.ConntrackText]::Protocol([Enum]::ToObject([CalicoBpf.IpProtocol], $n))
            { Get-BpfConntrack -Protocol $text -ErrorAction Stop } | Should -Not -Throw -Because "the table shows protocol $n as $text"
        }
        foreach ($t in [timespan]::FromMilliseconds(850), [timespan]::FromSeconds(668.3), [timespan]'03:05:59', [timespan]'2.04:30:00') {
            $shown = [CalicoBpf.ConntrackText]::ShortDuration($t)
            { Get-BpfConntrack -OlderThan $shown -ErrorAction Stop } | Should -Not -Throw -Because "$t is shown as $shown"
        }
        { Remove-BpfConntrack -State SYN-SENT -WhatIf -ErrorAction Stop } | Should -Not -Throw
    }

    It 'matches -Address against source, destination and service' {
        $one = ($all | Where-Object Type -eq 'NatReverse' | Select-Object -First 1)
        $hits = @(Get-BpfConntrack -Address "$($one.ServiceAddress)")
        $hits.Source | Should -Contain $one.Source
        @(Get-BpfConntrack -Address 10.65.0.0/16).Count | Should -BeGreaterThan 0
    }

    It 'pipes into Group-Object, Sort-Object and ConvertTo-Json' {
        $states = Get-BpfConntrack -Protocol Tcp -Type Normal, NatReverse | Group-Object State -NoElement
        ($states | Measure-Object Count -Sum).Sum | Should -Be @($all | Where-Object { $_.Protocol -eq 'Tcp' -and $_.Type -ne 'NatForward' }).Count
        $json = Get-BpfConntrack -Type NatReverse | Sort-Object AgeValue | Select-Object -First 2 Source, SourceAddress, ServiceEndpoint, Destination, State, Age, LastSeen |
            ConvertTo-Json | ConvertFrom-Json
        $json[0].Source | Should -Match '^\d+\.\d+\.\d+\.\d+:\d+$'
        $json[0].SourceAddress | Should -Match '^\d+\.\d+\.\d+\.\d+$'
        $json[0].ServiceEndpoint | Should -Match ':\d+$'
        $json[0].State | Should -BeOfType [string]
        [timespan]$json[0].Age | Should -BeLessOrEqual ([timespan]$json[1].Age)
    }

    It 'gives an unchanged entry the same LastSeen in two reads' {
        $first = @(Get-BpfConntrack | Sort-Object { $_.Key.ToString() })
        Start-Sleep -Milliseconds 20
        $second = @(Get-BpfConntrack | Sort-Object { $_.Key.ToString() })
        $second.Count | Should -Be $first.Count
        for ($i = 0; $i -lt $first.Count; $i++) { $second[$i].LastSeen | Should -Be $first[$i].LastSeen }
        # The age still grows: it is measured against the monotonic clock now.
        ($second[0].AgeValue - $first[0].AgeValue) | Should -BeGreaterThan ([timespan]::Zero)
    }

    It 'renders its default table' {
        $text = Get-BpfConntrack -Type NatReverse | Select-Object -First 3 | Out-String -Width 150
        $text | Should -Match 'Protocol\s+Source\s+Destination\s+Type\s+State\s+Age\s+ServiceEndpoint'
        $text | Should -Match 'NatReverse'
    }

    It 'rejects a bad address with <Id>' -ForEach @(
        @{ Address = 'pod-a'; Id = 'InvalidAddress' }
        @{ Address = 'fd00::1'; Id = 'AddressFamilyMismatch' }
    ) {
        { Get-BpfConntrack -Address $Address -ErrorAction Stop } | Should -Throw -ErrorId "$Id,CalicoBpf.Commands.GetBpfConntrackCommand"
    }

    It 'says the IPv6 table is absent, naming the map' {
        { Get-BpfConntrack -IPv6 -PinPath $fs.PinPath -ErrorAction Stop } | Should -Not -Throw
        $err = $null
        try { Remove-Item (Join-Path $fs.PinPath 'cali_v6_ct4') -ErrorAction Stop; Get-BpfConntrack -IPv6 -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be 'MapNotFound,CalicoBpf.Commands.GetBpfConntrackCommand'
        $err.Exception.Message | Should -Match 'cali_v6_ct'
    }

    It 'stops a dump when the pipeline is stopped (Ctrl+C)' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$manifestPath'; Get-BpfConntrack -PinPath '$($fs.PinPath)' | ForEach-Object { Start-Sleep -Milliseconds 20; `$_ }")
            $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $output)
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while ($output.Count -lt 3 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 10 }
            $output.Count | Should -BeGreaterOrEqual 3 -Because ($ps.InvocationStateInfo.Reason | Out-String)
            $ps.Stop()
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $output.Count | Should -BeLessThan $expected
        } finally { $ps.Dispose() }
    }
}

Describe 'Get-BpfCounter' -Skip:(-not $kernel) {
    It 'answers "which interfaces drop packets, and why"' {
        $drops = @(Get-BpfCounter | Where-Object { $_.Category -eq 'Dropped' -and $_.Ingress -gt 0 })
        ($drops | ForEach-Object { "$($_.Interface):$($_.Name)=$($_.Ingress)" } | Sort-Object) -join ';' |
            Should -Be 'ifindex 4242:too short packets=9;lo:by policy=77;lo:malformed IP packets=2'
    }

    It 'gives one row per counter, - where no program is attached' {
        $lo = @(Get-BpfCounter -Interface lo)
        $lo.Count | Should -Be 26
        $lo[0] | Should -BeOfType ([CalicoBpf.InterfaceCounter])
        ($lo | Where-Object Id -eq 'TotalPackets').Egress | Should -Be 4000
        ($lo | Where-Object Id -eq 'TotalPackets').Xdp | Should -BeNullOrEmpty
        $text = $lo | Out-String -Width 150
        $text | Should -Match 'CATEGORY\s+NAME\s+INGRESS\s+EGRESS\s+XDP'
        $text | Should -Match '\s-\s*$|\s-\r?\n'
        $text | Should -Not -Match 'N/A'
    }

    It 'takes Interface from the pipeline by property name, with wildcards' {
        (@([pscustomobject]@{ Interface = 'l*' } | Get-BpfCounter).Interface | Sort-Object -Unique) | Should -Be 'lo'
    }

    It 'says when an interface has no counters' {
        $null = Get-BpfCounter -Interface eth42 -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'InterfaceNotFound,*'
    }
}

Describe 'Clear errors in the wrong places' -Skip:(-not $kernel) {
    It 'names a missing pin directory (NoBpfFs)' {
        { Get-BpfMap -PinPath '/nonexistent/calicobpf' -ErrorAction Stop } | Should -Throw -ErrorId 'NoBpfFs,CalicoBpf.Commands.GetBpfMapCommand'
    }

    It 'says a file or a map''s pin given as -PinPath is not the directory (PinPathNotDirectory)' {
        $file = Join-Path $TestDrive 'a-file'
        Set-Content $file 'x'
        $err = $null
        try { Get-BpfMap -PinPath $file -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be 'PinPathNotDirectory,CalicoBpf.Commands.GetBpfMapCommand'
        $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
        $err.Exception.Message | Should -Match 'is a file, not a directory'
        $err.Exception.Message | Should -Not -Match 'no bpffs'
        $pin = Join-Path $fs.PinPath 'cali_v4_ct4'
        $err = $null
        try { Get-BpfConntrack -PinPath $pin -ErrorAction Stop } catch { $err = $_ }
        $err.FullyQualifiedErrorId | Should -Be 'PinPathNotDirectory,CalicoBpf.Commands.GetBpfConntrackCommand'
        $err.Exception.Message | Should -Match ([regex]::Escape("pinned object (a map's pin?), not a directory: -PinPath takes the directory the maps are pinned in ($($fs.PinPath) here)"))
    }

    It 'names a directory that is not bpffs (NoBpfFs)' {
        { Get-BpfCounter -PinPath $TestDrive -ErrorAction Stop } | Should -Throw -ErrorId 'NoBpfFs,CalicoBpf.Commands.GetBpfCounterCommand'
    }

    It 'says when no Calico map is pinned (NoCalicoMaps)' {
        $empty = New-TestBpfFs
        try {
            $err = $null
            try { Get-BpfConntrack -PinPath $empty.PinPath -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'NoCalicoMaps,CalicoBpf.Commands.GetBpfConntrackCommand'
            $err.Exception.Message | Should -Match 'eBPF mode'
        } finally { Remove-TestBpfFs $empty }
    }

    It 'names the map and its sizes when they match no layout (UnknownMapLayout)' {
        $odd = New-TestBpfFs
        try {
            $m = [CalicoBpf.Interop.BpfMap]::Create('LruHash', 16, 96, 64, 'cali_v4_ct4', 0)
            try { $m.Pin((Join-Path $odd.PinPath 'cali_v4_ct4')) } finally { $m.Dispose() }
            $err = $null
            try { Get-BpfConntrack -PinPath $odd.PinPath -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'UnknownMapLayout,CalicoBpf.Commands.GetBpfConntrackCommand'
            $err.CategoryInfo.Category | Should -Be 'InvalidData'
            $err.Exception.Message | Should -Match 'cali_v4_ct4.*16-byte keys and 96-byte values'
        } finally { Remove-TestBpfFs $odd }
    }

    It 'tells a non-root user to run as root (NotRoot)' {
        $out = Invoke-AsNobody "try { Get-BpfMap -ErrorAction Stop } catch { `$_.FullyQualifiedErrorId; `$_.CategoryInfo.Category; `$_.Exception.Message }"
        if ($null -eq $out) { Set-ItResult -Skipped -Because 'setpriv (util-linux) is not installed'; return }
        $out[0] | Should -Be 'NotRoot,CalicoBpf.Commands.GetBpfMapCommand'
        $out[1] | Should -Be 'PermissionDenied'
        $out[2] | Should -Match 'needs root.*sudo pwsh'
    }

    It 'a non-root user is told the trace buffer needs root, not that tracefs is not mounted, and Test-CalicoEbpf -Local says it once' {
        $tracing = Join-Path ([IO.Path]::GetTempPath()) "calicobpf-tracefs-$PID"
        $null = New-Item -ItemType Directory $tracing
        & mount -t tracefs nodev $tracing
        try {
            $out = Invoke-AsNobody "foreach (`$p in @{}, @{ TracingPath = '$tracing' }) { try { Get-BpfTraceLog @p -ErrorAction Stop } catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message } }; Test-CalicoEbpf -Local | ForEach-Object { `"`$(`$_.Check)|`$(`$_.Status)|`$(`$_.Message)`" }"
            if ($null -eq $out) { Set-ItResult -Skipped -Because 'setpriv (util-linux) is not installed'; return }
            # Found in the mounts table, and given as -TracingPath: both say root, neither "not mounted".
            $out[0] | Should -Be 'NotRoot,CalicoBpf.Commands.GetBpfTraceLogCommand'
            $out[1] | Should -Match 'is readable by root only.*sudo pwsh'
            $out[2] | Should -Be 'NotRoot,CalicoBpf.Commands.GetBpfTraceLogCommand'
            $out[3] | Should -Match ([regex]::Escape("($tracing) is readable by root only"))
            # Test-CalicoEbpf -Local says it once, in the access check; the checks that need root are Skipped.
            $checks = @($out | Select-Object -Skip 4)
            @($checks | Where-Object { $_ -match 'root' -and $_ -notmatch '\|Skipped\|' }) | Should -Be @('access|Fail|Not running as root: this machine''s BPF maps and trace buffer are root''s. The checks that read them are skipped.')
            @($checks | Where-Object { $_ -match '\|Skipped\|Not checked: reading this machine''s BPF maps needs root \(see access\)' }).Count | Should -BeGreaterThan 0
            @($checks | Where-Object { $_ -match '\|Error\|' }) | Should -BeNullOrEmpty
        } finally {
            & umount $tracing
            Remove-Item -Recurse -Force $tracing -ErrorAction SilentlyContinue
        }
    }

    It '-TracingPath that is no tracefs directory says what it is and what to give' {
        $file = Join-Path $TestDrive 'a-file'
        Set-Content $file 'x'
        $empty = Join-Path $TestDrive 'empty-dir'
        $null = New-Item -ItemType Directory $empty
        foreach ($case in @(@{ Path = (Join-Path $TestDrive 'missing'); Says = 'does not exist' }, @{ Path = $file; Says = 'is a file, not a directory' }, @{ Path = $empty; Says = 'has no trace file: it is not a tracefs directory' })) {
            $err = $null
            try { $null = Get-BpfTraceLog -TracingPath $case.Path -ErrorAction Stop } catch { $err = $_ }
            $err.FullyQualifiedErrorId | Should -Be 'TracingPathNotTraceFs,CalicoBpf.Commands.GetBpfTraceLogCommand'
            $err.CategoryInfo.Category | Should -Be 'InvalidArgument'
            "$err" | Should -Match ([regex]::Escape("-TracingPath $($case.Path) $($case.Says)"))
            "$err" | Should -Match '/sys/kernel/tracing'
        }
    }

    It 'turns a kernel refusal (EACCES on a pin) into PermissionDenied, not a crash' {
        $setpriv = Get-Command setpriv -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
        if (-not $setpriv) { Set-ItResult -Skipped -Because 'setpriv (util-linux) is not installed'; return }
        $locked = New-TestBpfFs
        try {
            $m = [CalicoBpf.Interop.BpfMap]::Create('LruHash', 16, 88, 64, 'cali_v4_ct4', 0)
            try { $m.Pin((Join-Path $locked.PinPath 'cali_v4_ct4')) } finally { $m.Dispose() }
            & chmod 000 (Join-Path $locked.PinPath 'cali_v4_ct4')
            # Root without CAP_DAC_OVERRIDE is refused by the pin's file mode, as a non-root user would be.
            $script = "Import-Module '$manifestPath'; try { Get-BpfConntrack -PinPath '$($locked.PinPath)' -ErrorAction Stop } catch { `$_.FullyQualifiedErrorId; `$_.Exception.Message }"
            $out = & $setpriv.Source --inh-caps=-all --bounding-set=-all (Get-PwshPath) -NoProfile -NonInteractive -Command $script 2>&1
            ($out | Select-Object -First 1) | Should -Be 'PermissionDenied,CalicoBpf.Commands.GetBpfConntrackCommand'
            ($out | Out-String) | Should -Match 'cali_v4_ct4.*Permission denied.*Run as root'
        } finally { Remove-TestBpfFs $locked }
    }
}
