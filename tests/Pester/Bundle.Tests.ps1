# Diagnostics bundles: Export-CalicoBpfDiagnostic captures the test cluster of bundle.yaml (and this
# machine's maps in a private bpffs), and every reader gives offline, with -Bundle, what it gives
# live: the same objects (field by field, what moves with time left out), the same filters, views
# and errors, and the typed JSON in the bundle is exactly those objects. No secret is ever inside.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    # Each reader, the family of typed JSON it matches, its arguments, and what moves between two reads.
    $script:readers = @(
        @{ Command = 'Get-BpfConntrack'; Family = 'conntrack'; Arguments = @{}; Volatile = @('Age', 'LastSeen', 'ResetSeen', 'Created') }
        @{ Command = 'Get-BpfNat'; Family = 'nat'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfNatAffinity'; Family = 'nat-affinity'; Arguments = @{}; Volatile = @('Age', 'LastRefreshed') }
        @{ Command = 'Get-BpfNatMaglev'; Family = 'maglev'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfRoute'; Family = 'routes'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfIpSet'; Family = 'ipsets'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfArp'; Family = 'arp'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfCounter'; Family = 'counters'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfInterface'; Family = 'interfaces'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfPolicy'; Family = 'policy'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfMap'; Family = 'maps'; Arguments = @{}; Volatile = @() }
        @{ Command = 'Get-BpfQdiscStatistic'; Family = 'qdiscs'; Arguments = @{}; Volatile = @('Bytes', 'Packets', 'Drops', 'Overlimits', 'Requeues', 'Backlog', 'QueueLength') }
        @{ Command = 'Get-BpfConnectTimeProgram'; Family = 'connect-time'; Arguments = @{ All = $true }; Volatile = @() }
    )
}

BeforeAll {
    Import-ModuleUnderTest -Simulation
    $cluster = Start-ScenarioCluster bundle $TestDrive
    $zip = Join-Path $TestDrive 'cluster.zip'
    if ($cluster) { $made = Export-CalicoBpfDiagnostic -Node * -Path $zip -ErrorVariable exportErrors -ErrorAction SilentlyContinue }

    function ConvertTo-Comparable($Objects, [string[]] $Volatile = @()) {
        # Each object as the bundle writes it (every public property, enums by name), what moves with time left out, sorted.
        @($Objects | Where-Object { $null -ne $_ } | ForEach-Object {
                $o = $_.psobject.BaseObject
                $node = [System.Text.Json.Nodes.JsonNode]::Parse([System.Text.Json.JsonSerializer]::Serialize($o, $o.GetType(), [CalicoBpf.Bundles.BundleFormat]::Json))
                foreach ($v in $Volatile) { $null = $node.Remove($v) }
                $node.ToJsonString()
            } | Sort-Object)
    }

    function Read-BundleEntry([string] $Zip, [string] $Name) {
        # An entry's text (gzip entries decompressed); null when the bundle has no such entry.
        $archive = [System.IO.Compression.ZipFile]::OpenRead($Zip)
        try {
            $e = $archive.GetEntry($Name)
            if (-not $e) { return $null }
            $s = $e.Open()
            if ($Name.EndsWith('.gz')) { $s = [System.IO.Compression.GZipStream]::new($s, [System.IO.Compression.CompressionMode]::Decompress) }
            $r = [System.IO.StreamReader]::new($s)
            try { $r.ReadToEnd() } finally { $r.Dispose() }
        } finally { $archive.Dispose() }
    }

    function Read-BundleObjects([string] $Zip, [string] $Node, [string] $Family) {
        $text = Read-BundleEntry $Zip "nodes/$Node/objects/$Family.json.gz"
        @(if ($text) { $text -split "`n" | Where-Object { $_ } | Sort-Object })
    }

    function Invoke-Both([string] $Command, [hashtable] $Arguments, [string[]] $Node) {
        # Live and offline, IPv4 and (where the reader has it) IPv6.
        $v6 = (Get-Command $Command).Parameters.ContainsKey('IPv6')
        $live = @(& $Command -Node $Node @Arguments -ErrorAction SilentlyContinue) + @(if ($v6) { & $Command -Node $Node -IPv6 @Arguments -ErrorAction SilentlyContinue })
        $off = @(& $Command -Bundle $zip -Node $Node @Arguments -ErrorAction SilentlyContinue) + @(if ($v6) { & $Command -Bundle $zip -Node $Node -IPv6 @Arguments -ErrorAction SilentlyContinue })
        [pscustomobject]@{ Live = $live; Offline = $off }
    }
}

AfterAll {
    Stop-ScenarioCluster $cluster
}

Describe 'A bundle of the test cluster' -Skip:(-not $kernel) {
    It 'holds every node running calico-node, and says which could not be read' {
        $made | Should -BeOfType ([CalicoBpf.DiagnosticBundle])
        $made.Path | Should -Be $zip
        $made.Kind | Should -Be 'Cluster'
        $made.Nodes | Should -Be 3
        $made.Size | Should -Be (Get-Item $zip).Length
        $exportErrors | Should -BeNullOrEmpty
        $manifest = Read-BundleEntry $zip 'manifest.json' | ConvertFrom-Json
        $manifest.Format | Should -Be 'calicobpf-bundle/1'
        $manifest.Nodes.Node | Should -Be @('bn-a', 'bn-b', 'bn-c')
        ($manifest.Nodes | Where-Object Node -EQ bn-a).Release | Should -Match '^v3\.32\.1 '
        # bn-c fell back to iptables: its maps cannot be read, which the manifest says per family.
        $c = $manifest.Nodes | Where-Object Node -EQ bn-c
        ($c.Families | Where-Object Family -EQ conntrack).Problem | Should -Match 'cannot be listed on bn-c'
        $a = $manifest.Nodes | Where-Object Node -EQ bn-a
        ($a.Families | Where-Object Family -EQ conntrack).Objects | Should -BeGreaterThan 60
        ($a.Families | Where-Object Family -EQ conntrack).Json | Should -BeTrue
        (Read-BundleEntry $zip 'nodes/bn-a/calico-node.log.gz') | Should -Match 'BPF enabled, starting BPF endpoint manager'
        (Read-BundleEntry $zip 'checks.json' | ConvertFrom-Json).Check | Should -Contain 'bpf-running'
    }

    It '<Command> gives offline what it gives live, and the bundle''s typed JSON is those objects' -ForEach $readers {
        $both = Invoke-Both $Command $Arguments @('bn-a', 'bn-b')
        if ($Family -notin 'connect-time') { $both.Live.Count | Should -BeGreaterThan 0 -Because "$Command has something to compare on bn-a and bn-b" }
        $both.Offline.Count | Should -Be $both.Live.Count
        ConvertTo-Comparable $both.Offline $Volatile | Should -Be (ConvertTo-Comparable $both.Live $Volatile)
        foreach ($n in 'bn-a', 'bn-b') {
            $offline = ConvertTo-Comparable ($both.Offline | Where-Object Node -EQ $n)
            Read-BundleObjects $zip $n $Family | Should -Be $offline -Because "nodes/$n/objects/$Family.json.gz holds the objects offline reads give"
        }
    }

    It 'Get-BpfConntrackStatistic counts offline what it counts live, and what the bundle''s conntrack entries give' {
        $both = Invoke-Both 'Get-BpfConntrackStatistic' @{} @('bn-a', 'bn-b')
        $both.Live.Count | Should -Be 4 -Because 'IPv4 and IPv6 on bn-a and bn-b'
        ConvertTo-Comparable $both.Offline | Should -Be (ConvertTo-Comparable $both.Live)
        $a = $both.Offline | Where-Object { $_.Node -eq 'bn-a' -and $_.MapName -like 'cali_v4_*' }
        $entries = @(Get-BpfConntrack -Bundle $zip -Node bn-a)
        $a.Entries | Should -Be $entries.Count
        $a.NatConnections | Should -Be @($entries | Where-Object Type -eq 'NatForward').Count
        $a.TcpEstablished | Should -Be @($entries | Where-Object { $_.Type -ne 'NatForward' -and $_.State -eq 'Established' }).Count
    }

    It 'filters offline as live: addresses, protocols, pods by name (-Resolve)' {
        $live = @(Get-BpfConntrack -Node bn-a -Protocol UDP -Address 10.66.0.23 -Resolve)
        $off = @(Get-BpfConntrack -Bundle $zip -Node bn-a -Protocol UDP -Address 10.66.0.23 -Resolve)
        $live.Count | Should -BeGreaterThan 0
        ConvertTo-Comparable $off 'Age', 'LastSeen', 'ResetSeen', 'Created' | Should -Be (ConvertTo-Comparable $live 'Age', 'LastSeen', 'ResetSeen', 'Created')
        $off.SourcePod | Should -Contain 'shop/web-5c7d9-k2x8p'
        @(Get-BpfNat -Bundle $zip -Service shop/cart -ErrorAction SilentlyContinue).Count | Should -Be @(Get-BpfNat -Node * -Service shop/cart -ErrorAction SilentlyContinue).Count
        @(Get-BpfRoute -Bundle $zip -Node bn-a -Address 10.66.2.7).Cidr | Should -Be '10.66.2.0/26'
    }

    It 'shows offline the views live shows' {
        # Without -Node, every node of the bundle, as -Node * live (bn-c's error included).
        $live = Get-BpfRoute -Node * -ErrorAction SilentlyContinue | Sort-Object Node, Cidr | Out-String
        $off = Get-BpfRoute -Bundle $zip -ErrorAction SilentlyContinue | Sort-Object Node, Cidr | Out-String
        $off | Should -BeExactly $live
        (Get-BpfCounter -Bundle $zip -Node bn-a | Out-String) | Should -BeExactly (Get-BpfCounter -Node bn-a | Out-String)
    }

    It 'Get-CalicoNode, Get-FelixBpfConfig and -Effective give offline what they give live' {
        ConvertTo-Comparable (Get-CalicoNode -Bundle $zip) | Should -Be (ConvertTo-Comparable (Get-CalicoNode))
        ConvertTo-Comparable (Get-FelixBpfConfig -Bundle $zip) | Should -Be (ConvertTo-Comparable (Get-FelixBpfConfig))
        ConvertTo-Comparable (Get-FelixBpfConfig -Bundle $zip -Node bn-a -Effective) | Should -Be (ConvertTo-Comparable (Get-FelixBpfConfig -Node bn-a -Effective))
    }

    It 'Test-CalicoEbpf gives offline the results it gives live, which the bundle also holds' {
        $live = @(Test-CalicoEbpf)
        $off = @(Test-CalicoEbpf -Bundle $zip)
        $live.Count | Should -BeGreaterThan 10
        ConvertTo-Comparable $off | Should -Be (ConvertTo-Comparable $live)
        $kept = Read-BundleEntry $zip 'checks.json' | ConvertFrom-Json
        @($kept | ForEach-Object { "$($_.Check) $($_.Node) $($_.Status)" } | Sort-Object) | Should -Be @($off | ForEach-Object { "$($_.Check) $($_.Node) $($_.Status)" } | Sort-Object)
    }

    It 'Test-BpfFlow predicts offline what it predicts live' {
        $live = Test-BpfFlow -Node bn-a -Source 10.66.0.23 -Destination 10.96.0.40 -Port 80
        $off = Test-BpfFlow -Bundle $zip -Node bn-a -Source 10.66.0.23 -Destination 10.96.0.40 -Port 80
        $off.Verdict | Should -Be $live.Verdict
        ($off.Stages | ForEach-Object { "$($_.Stage) $($_.Result)" }) | Should -Be ($live.Stages | ForEach-Object { "$($_.Stage) $($_.Result)" })
    }

    It 'a node whose dataplane could not be read fails offline as it fails live' {
        $null = Get-BpfConntrack -Node bn-c -ErrorVariable liveError -ErrorAction SilentlyContinue
        $null = Get-BpfConntrack -Bundle $zip -Node bn-c -ErrorVariable offError -ErrorAction SilentlyContinue
        $liveError.Count | Should -Be 1
        $offError.Count | Should -Be 1
        $offError[0].FullyQualifiedErrorId | Should -Be $liveError[0].FullyQualifiedErrorId
        $offError[0].Exception.Message | Should -Be $liveError[0].Exception.Message
        # Its trace buffer, as live: a calico-node container has no tracefs.
        $null = Get-BpfTraceLog -Bundle $zip -Node bn-a -ErrorVariable traceOff -ErrorAction SilentlyContinue
        $null = Get-BpfTraceLog -Node bn-a -ErrorVariable traceLive -ErrorAction SilentlyContinue
        $traceOff[0].Exception.Message | Should -Be $traceLive[0].Exception.Message
    }

    It 'keeps a window of each node''s counters: sampled offline at its two times, as Get-BpfDrop and -SampleInterval read it' {
        $m = (Read-BundleEntry $zip 'manifest.json') | ConvertFrom-Json
        $a = $m.nodes | Where-Object node -eq bn-a
        ([datetime]$a.window.end - [datetime]$a.window.start).TotalSeconds | Should -BeGreaterOrEqual 5 -Because 'the default -Window is 5s'
        $archive = [System.IO.Compression.ZipFile]::OpenRead($zip)
        try { $started = @($archive.Entries.FullName | Where-Object { $_ -like 'nodes/bn-a/window-start/maps/*' }) } finally { $archive.Dispose() }
        @($started | Where-Object { $_ -like '*/cali_counters*.bin.gz' }).Count | Should -Be 1 -Because 'the counters read at the window''s start are kept'
        # Nothing dropped on the test cluster's nodes in the window (tests/Pester/Sampling.Tests.ps1 drops packets in one).
        $drops = @(Get-BpfDrop -Bundle $zip -ErrorVariable dropErrors -ErrorAction SilentlyContinue)
        $null = Get-BpfDrop -Node bn-c -Window 1 -ErrorVariable liveErrors -ErrorAction SilentlyContinue
        $drops.Count | Should -Be 0
        # bn-c runs no eBPF: its window fails offline as it fails live.
        @($dropErrors | ForEach-Object { "$($_.FullyQualifiedErrorId) $($_.Exception.Message)" }) | Should -Be @($liveErrors | ForEach-Object { "$($_.FullyQualifiedErrorId) $($_.Exception.Message)" })
        $liveErrors.Count | Should -Be 1
        $samples = @(Get-BpfCounter -Bundle $zip -Node bn-a -SampleInterval 1 -IncludeUnchanged)
        $live = @(Get-BpfCounter -Node bn-a -SampleInterval 1 -IncludeUnchanged)
        (ConvertTo-Comparable $samples 'Timestamp', 'Rate', 'Sample', 'Interval') | Should -Be (ConvertTo-Comparable $live 'Timestamp', 'Rate', 'Sample', 'Interval') -Because 'the counters did not move: offline rows are the live rows'
        @($samples.IntervalValue | Sort-Object -Unique) | Should -Be @([datetime]$a.window.end - [datetime]$a.window.start) -Because 'a rate offline divides by the window'
        $samples.Count | Should -BeGreaterThan 0
        @($samples.Timestamp | Sort-Object -Unique) | Should -Be @([datetime]$a.window.end)
        @($samples | Where-Object Delta -ne 0) | Should -BeNullOrEmpty
        # -LogLines bounds the checks' reads of the log too (they read 5000 lines live).
        $short = Join-Path $TestDrive 'short-log.zip'
        $null = Export-CalicoBpfDiagnostic -Node bn-a -Path $short -LogLines 1 -Window 0
        @((Read-BundleEntry $short 'nodes/bn-a/calico-node.log.gz') -split "`n" | Where-Object { $_ }).Count | Should -Be 1
        # -Local with a cluster's bundle of several nodes says what to do (it was an InvalidOperationException).
        { Test-CalicoEbpf -Bundle $zip -Local -ErrorAction Stop } | Should -Throw -ErrorId 'BundleNodeAmbiguous,CalicoBpf.Commands.TestCalicoEbpfCommand'
        # A bundle made without a window says so per node.
        $none = Join-Path $TestDrive 'no-window.zip'
        $null = Export-CalicoBpfDiagnostic -Node bn-a -Path $none -NoCheck -Window 0
        $null = Get-BpfDrop -Bundle $none -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].Exception.Message | Should -Be "$none holds no window of bn-a's counters: the bundle was made with -Window 0."
    }

    It 'never holds a secret: tokens of the kubeconfig, secret environment values, last-applied copies' {
        $archive = [System.IO.Compression.ZipFile]::OpenRead($zip)
        try { $names = @($archive.Entries.FullName) } finally { $archive.Dispose() }
        $names.Count | Should -BeGreaterThan 20
        $all = ($names | ForEach-Object { Read-BundleEntry $zip $_ }) -join "`n"
        $all | Should -Not -Match 'pl4nted-bundle-s3cret'
        $all | Should -Not -Match 'admin-token|readonly-token'
        $all | Should -Not -Match 'last-applied-configuration'
        # The variable is there, its value is not: what Felix reads from its environment stays visible.
        $all | Should -Match 'CALICO_DATASTORE_PASSWORD'
        $all | Should -Match 'FELIX_HEALTHENABLED'
    }

    It '-WhatIf writes nothing, and an existing bundle needs -Force' {
        $other = Join-Path $TestDrive 'whatif.zip'
        Export-CalicoBpfDiagnostic -Node bn-b -Path $other -WhatIf
        Test-Path $other | Should -BeFalse
        { Export-CalicoBpfDiagnostic -Node bn-b -Path $zip -ErrorAction Stop } | Should -Throw -ErrorId 'BundleExists,CalicoBpf.Commands.ExportCalicoBpfDiagnosticCommand'
        @(Get-ChildItem $TestDrive -Force | Where-Object Name -Like '.*parts-*').Count | Should -Be 0 -Because 'the work directory goes with the export'
    }

    It 'refuses what a bundle cannot answer, with what to do' {
        foreach ($changer in 'Remove-BpfConntrack', 'Clear-BpfCounter', 'Clear-BpfArp', 'Remove-BpfConnectTimeProgram', 'Watch-BpfConntrack', 'Export-CalicoBpfDiagnostic') {
            (Get-Command $changer).Parameters.ContainsKey('Bundle') | Should -BeFalse -Because "$changer works on live nodes only"
        }
        { Get-BpfCounter -Bundle $zip -SampleInterval 1 -MaxSamples 2 -ErrorAction Stop } | Should -Throw -ErrorId 'BundleIsOneMoment,CalicoBpf.Commands.GetBpfCounterCommand'
        { Get-BpfDrop -Bundle $zip -Follow -ErrorAction Stop } | Should -Throw -ErrorId 'BundleIsOneMoment,CalicoBpf.Commands.GetBpfDropCommand'
        { Get-BpfTraceLog -Bundle $zip -Follow -ErrorAction Stop } | Should -Throw -ErrorId 'BundleIsOneMoment,CalicoBpf.Commands.GetBpfTraceLogCommand'
        $notZip = Join-Path $TestDrive 'not-a-bundle.zip'
        Set-Content $notZip 'hello'
        { Get-BpfRoute -Bundle $notZip -ErrorAction Stop } | Should -Throw -ErrorId 'BundleUnreadable,CalicoBpf.Commands.GetBpfRouteCommand'
        { Get-BpfRoute -Bundle (Join-Path $TestDrive 'missing.zip') -ErrorAction Stop } | Should -Throw -ErrorId 'BundleUnreadable,CalicoBpf.Commands.GetBpfRouteCommand'
        $null = Get-BpfRoute -Bundle $zip -Node bn-zz -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'NodeNotFound,CalicoBpf.Commands.GetBpfRouteCommand'
    }
}

Describe 'A bundle of this machine' -Skip:(-not $kernel) {
    BeforeAll {
        $fs = New-TestBpfFs
        $scenario = [CalicoBpf.Simulation.NodeScenario]::Parse(@'
node: bundle-local
randomSeed: 9
conntrack: { tcp: 3000, udp: 10, services: 8, nodePorts: 2 }
interfaces:
  - name: lo
    ingress: { TotalPackets: 5000, AcceptedByPolicy: 4900, DroppedByPolicy: 77 }
services:
  - { id: 1, address: 10.96.0.10, port: 53, protocol: UDP, backends: [10.65.0.5:53, 10.65.2.9:53], localBackends: 1 }
routes:
  - { cidr: 10.65.0.0/26, type: local workload in-pool }
  - { cidr: 172.18.0.11/32, type: remote host }
'@)
        $links = [System.Collections.Generic.Dictionary[string, int]]::new()
        $links['lo'] = 1
        $sim = [CalicoBpf.Simulation.SimulatedDataplane]::Claim($fs.PinPath)
        try { $scenario.Seed($sim, $links) } finally { $sim.Dispose() }
        $local = Join-Path $TestDrive 'local.zip'
        $made = Export-CalicoBpfDiagnostic -Path $local -PinPath $fs.PinPath
    }
    AfterAll { Remove-TestBpfFs $fs }

    It 'is read offline as this machine is read' {
        $made.Kind | Should -Be 'Local'
        $made.Nodes | Should -Be 1
        foreach ($cmd in 'Get-BpfConntrack', 'Get-BpfNat', 'Get-BpfRoute', 'Get-BpfCounter', 'Get-BpfMap') {
            $volatile = if ($cmd -eq 'Get-BpfConntrack') { 'Age', 'LastSeen', 'ResetSeen', 'Created' } else { @() }
            $live = @(& $cmd -PinPath $fs.PinPath)
            $live.Count | Should -BeGreaterThan 0 -Because "$cmd reads something here"
            ConvertTo-Comparable (& $cmd -Bundle $local) $volatile | Should -Be (ConvertTo-Comparable $live $volatile) -Because "$cmd -Bundle reads what $cmd reads"
        }
        ConvertTo-Comparable (Test-CalicoEbpf -Bundle $local) | Should -Be (ConvertTo-Comparable (Test-CalicoEbpf -Local -PinPath $fs.PinPath))
    }

    It 'keeps to -MaxSize: the typed JSON goes first, and the bundle says so' {
        # The raw conntrack table takes some 150 KB here, its typed JSON several times that.
        $small = Join-Path $TestDrive 'small.zip'
        $b = Export-CalicoBpfDiagnostic -Path $small -PinPath $fs.PinPath -MaxSize 400KB -NoCheck -Window 0
        $b.Complete | Should -Be 1
        $b.Size | Should -BeLessOrEqual (400KB + 32KB) -Because 'the bound is on the entries; the zip adds its directory and the manifest'
        $manifest = Read-BundleEntry $small 'manifest.json' | ConvertFrom-Json
        $ct = $manifest.Nodes[0].Families | Where-Object Family -EQ conntrack
        $ct.Json | Should -BeFalse
        $ct.JsonOmitted | Should -Match 'size bound of 409600 bytes'
        Read-BundleEntry $small "nodes/$($manifest.Nodes[0].Node)/objects/conntrack.json.gz" | Should -BeNullOrEmpty
        # The facts are whole: -Bundle reads every entry.
        @(Get-BpfConntrack -Bundle $small).Count | Should -Be (3000 + 10 + 2 * (8 + 2))
    }

    It 'keeps to -MaxSize: then the largest maps, an error offline that says so' {
        $tiny = Join-Path $TestDrive 'tiny.zip'
        $b = Export-CalicoBpfDiagnostic -Path $tiny -PinPath $fs.PinPath -MaxSize 64KB -NoCheck -Window 0 -WarningVariable w -WarningAction SilentlyContinue
        $b.Partial | Should -Be 1
        $w | Should -Match 'cali_v4_ct\d'
        $null = Get-BpfConntrack -Bundle $tiny -ErrorVariable e -ErrorAction SilentlyContinue
        $e[0].FullyQualifiedErrorId | Should -Be 'NotInBundle,CalicoBpf.Commands.GetBpfConntrackCommand'
        $e[0].Exception.Message | Should -Match 'left out of the bundle.*-MaxSize'
        # What fit is read as live; a map left out still has the count it had (Get-BpfMap, the capacity check).
        ConvertTo-Comparable (Get-BpfRoute -Bundle $tiny) | Should -Be (ConvertTo-Comparable (Get-BpfRoute -PinPath $fs.PinPath))
        $ct = @(Get-BpfMap -Bundle $tiny -ErrorVariable mapErrors -ErrorAction SilentlyContinue | Where-Object Name -match '^cali_v4_ct\d')
        $mapErrors.Count | Should -Be 0
        $ct[0].Entries | Should -Be (@(Get-BpfMap -PinPath $fs.PinPath | Where-Object Name -eq $ct[0].Name)[0].Entries)
        (Test-CalicoEbpf -Bundle $tiny -Check capacity).Status | Should -Not -Be 'Error'
    }

    It 'has no cluster: the cluster''s readers say so' {
        { Get-CalicoNode -Bundle $local -ErrorAction Stop } | Should -Throw '*made on one machine*without a cluster*-Node*'
    }
}

Describe 'Compare-BpfState: what changed between two states' -Skip:(-not $kernel) {
    BeforeAll {
        $before = Join-Path $TestDrive 'before.zip'
        $null = Export-CalicoBpfDiagnostic -Node bn-a, bn-b -Path $before -NoCheck -Window 0
        # Planted: a route added and one changed on bn-a (through bpftool on bn-a's own pins), bn-b's UDP flows
        # removed, bn-a's counters cleared (noise: not a difference unless -IncludeVolatile).
        $pins = "/tmp/cbk-$($cluster.RunId)-bn-a/bpffs/tc/globals"
        $routes = (Get-ChildItem $pins -Filter 'cali_v4_routes*' | Select-Object -First 1).FullName
        $tunnel = Get-BpfRoute -Node bn-a | Where-Object Cidr -EQ '10.66.2.0/26'
        function Hex([byte[]] $b) { $b | ForEach-Object { '{0:x2}' -f $_ } }
        function Set-Route([string] $Address, [int] $Length, [string] $NextHop) {
            $key = [CalicoBpf.Maps.RouteMap]::EncodeKey([ipaddress]$Address, $Length)
            $value = [CalicoBpf.Maps.RouteMap]::EncodeValue($tunnel.Flags, $false, [ipaddress]$NextHop, 0)
            & bpftool map update pinned $routes key hex @(Hex $key) value hex @(Hex $value)
            if ($LASTEXITCODE) { throw "bpftool could not update $routes" }
        }
        Set-Route 10.66.9.0 26 172.18.9.11
        Set-Route 10.66.2.0 26 172.18.9.99
        $udp = @(Get-BpfConntrack -Node bn-b -Protocol UDP)
        $null = Remove-BpfConntrack -Node bn-b -Protocol UDP -Confirm:$false
        Clear-BpfCounter -Node bn-a -Confirm:$false
        $after = Join-Path $TestDrive 'after.zip'
        $null = Export-CalicoBpfDiagnostic -Node bn-a, bn-b -Path $after -NoCheck -Window 0
        $expected = @(
            'bn-a routes Added 10.66.9.0/26'
            'bn-a routes Changed 10.66.2.0/26'
            $udp | ForEach-Object { "bn-b conntrack Removed $($_.Protocol) $($_.Source) -> $($_.Destination) $($_.Type)" }
        ) | Sort-Object
        function Describe-Differences($d) { @($d | ForEach-Object { "$($_.Node) $($_.Family) $($_.Change) $($_.Key)" } | Sort-Object) }
    }

    It 'between two bundles finds exactly the planted differences' {
        $udp.Count | Should -BeGreaterThan 0
        $d = @(Compare-BpfState $before $after)
        Describe-Differences $d | Should -Be $expected
        $changed = $d | Where-Object Change -EQ Changed
        $changed.Properties | Should -Contain 'NextHop: 172.18.9.11 -> 172.18.9.99'
        $changed.Reference.NextHop | Should -Be '172.18.9.11'
        $changed.Difference.NextHop | Should -Be '172.18.9.99'
        ($d | Where-Object Change -EQ Removed | Select-Object -First 1).Reference | Should -BeOfType ([CalicoBpf.ConntrackEntry])
    }

    It 'between a bundle and the live cluster finds the same' {
        Describe-Differences (Compare-BpfState $before) | Should -Be $expected
        @(Compare-BpfState $after -Node bn-a, bn-b).Count | Should -Be 0
    }

    It 'leaves out noise unless asked: cleared counters are changes only with -IncludeVolatile' {
        @(Compare-BpfState $before $after -Family counters).Count | Should -Be 0
        $noisy = @(Compare-BpfState $before $after -Family counters -IncludeVolatile)
        $noisy.Count | Should -BeGreaterThan 0
        $noisy.Node | Sort-Object -Unique | Should -Be 'bn-a'
        $noisy.Change | Sort-Object -Unique | Should -Be 'Changed'
        ($noisy | Where-Object Key -EQ 'eth0 TotalPackets').Properties | Should -Be @('Ingress: 182201 -> 0', 'Egress: 175011 -> 0')
    }

    It 'compares two nodes, and shows the differences by node' {
        $d = @(Compare-BpfState -ReferenceNode bn-a -DifferenceNode bn-b -Family routes)
        $d | Where-Object { $_.Key -eq '10.66.2.14/32' -and $_.Change -eq 'Added' } | Should -Not -BeNullOrEmpty
        $d | Where-Object { $_.Key -eq '10.66.0.23/32' -and $_.Change -eq 'Removed' } | Should -Not -BeNullOrEmpty
        ($d | Out-String) | Should -Match 'Node: bn-a against bn-b'
        { Compare-BpfState $before $after -Family bogus -ErrorAction Stop } | Should -Throw -ErrorId 'FamilyNotFound,CalicoBpf.Commands.CompareBpfStateCommand'
    }
}

