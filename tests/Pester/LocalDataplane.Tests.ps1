# On this machine: the other dataplane readers on real maps, and every change cmdlet (its -WhatIf leaves the bytes identical; the real change removes exactly what it says).
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    $manifestPath = Import-ModuleUnderTest -Simulation -PassThru
    $fs = $null
    if (Test-KernelAvailable) {
        $fs = New-TestBpfFs
        $policyDir = Join-Path $TestDrive 'policy'
        $scenario = [CalicoBpf.Simulation.NodeScenario]::Parse(@'
node: pester-dp
conntrack: { tcp: 30, udp: 10, services: 10 }
interfaces:
  - name: lo
    ingress: { TotalPackets: 100, DroppedByPolicy: 5 }
    egress: { TotalPackets: 90 }
services:
  - { id: 1, address: 10.96.0.10, port: 53, protocol: UDP, backends: [10.65.0.5:53, 10.65.2.9:53], localBackends: 1 }
  - { id: 2, address: 10.96.0.20, port: 80, protocol: TCP, backends: [10.65.0.8:8080], affinitySeconds: 600 }
  - { id: 4, address: 10.96.0.30, port: 9090, protocol: TCP, backends: [10.65.1.20:9090], missingBackends: 1 }
  - { id: 5, address: 10.96.0.40, port: 443, protocol: TCP, backends: [10.65.0.21:8443], maglevSlots: 7 }
routes:
  - { cidr: 10.65.0.0/16, type: remote workload in-pool, nextHop: 172.18.0.99 }
  - { cidr: 10.65.2.0/26, type: remote workload in-pool tunneled, nextHop: 172.18.0.12 }
ipSets:
  - { id: "0x0000000000000007", members: [10.65.0.5/32, 10.65.2.0/24] }
arp:
  - { address: 172.18.0.11, interface: lo, sourceMac: "66:e2:1f:00:0a:01", destinationMac: "66:e2:1f:00:0b:02" }
policies:
  - interface: lo
    hook: ingress
    tiers:
      - name: default
        policies:
          - name: default/allow-web
            rules:
              - { action: allow, protocol: TCP, ports: [80], matchId: 9001, hits: 42 }
'@)
        $links = [System.Collections.Generic.Dictionary[string, int]]::new()
        $links['lo'] = 1
        $sim = [CalicoBpf.Simulation.SimulatedDataplane]::Claim($fs.PinPath)
        try { $scenario.Seed($sim, $links, $policyDir) } finally { $sim.Dispose() }
        $env:NODENAME = 'pester-dp'
        $PSDefaultParameterValues['*-Bpf*:PinPath'] = $fs.PinPath
        $PSDefaultParameterValues['Get-BpfPolicy:PolicyDebugPath'] = $policyDir
    }

    function Get-DataplaneHash { Get-PinHash $fs.PinPath }
}

AfterAll {
    $PSDefaultParameterValues.Remove('*-Bpf*:PinPath')
    $PSDefaultParameterValues.Remove('Get-BpfPolicy:PolicyDebugPath')
    Remove-Item Env:NODENAME -ErrorAction SilentlyContinue
    Remove-TestBpfFs $fs
}

Describe 'Reading the rest of the dataplane' -Skip:(-not $kernel) {
    It 'Get-BpfNat resolves backends and flags missing ones with a warning' {
        $nat = @(Get-BpfNat -WarningVariable warn -WarningAction SilentlyContinue)
        $nat.Count | Should -Be 4
        $nat[0] | Should -BeOfType ([CalicoBpf.NatFrontend])
        ($nat | Where-Object ServiceId -eq 1).Backends.Address | Should -Be @('10.65.0.5', '10.65.2.9')
        ($nat | Where-Object ServiceId -eq 4).MissingBackendCount | Should -Be 1
        "$warn" | Should -Match '10\.96\.0\.30:9090.*missing'
        @(Get-BpfNat 10.96.0.10 -Protocol Udp).ServiceId | Should -Be 1
        @(Get-BpfNat -Port 443).ServiceId | Should -Be 5
        ($nat | Out-String -Width 150) | Should -Match 'Frontend\s+Protocol\s+SourceCidr\s+ServiceId\s+BackendCount\s+Backends'
    }

    It 'Get-BpfNatAffinity and Get-BpfNatMaglev' {
        (Get-BpfNatAffinity).BackendAddress | Should -Be '10.65.0.8'
        @(Get-BpfNat -ServiceId 5 | Get-BpfNatMaglev).Count | Should -Be 7
    }

    It 'Get-BpfRoute does a longest-prefix match with -Address' {
        @(Get-BpfRoute).Count | Should -Be 2
        (Get-BpfRoute 10.65.2.5).Cidr | Should -Be '10.65.2.0/26'
        (Get-BpfRoute 10.65.9.5).Description | Should -Be 'remote workload in-pool nh 172.18.0.99'
        $null = Get-BpfRoute 8.8.8.8 -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NoRoute,*'
    }

    It 'Get-BpfRoute -Address takes a CIDR (the routes within it) and says what it takes' {
        (Get-BpfRoute 10.65.0.0/16).Cidr | Should -Be @(Get-BpfRoute | Where-Object Cidr -like '10.65.*').Cidr
        (Get-BpfRoute -Address 10.65.2.0/24).Cidr | Should -Be '10.65.2.0/26'
        (Get-BpfRoute ::ffff:10.65.2.5).Cidr | Should -Be '10.65.2.0/26'   # IPv4-mapped: the IPv4 map, with the IPv4 key
        $null = Get-BpfRoute 192.168.0.0/16 -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NoRoute,*'
        "$($err[0])" | Should -Match 'No Calico route lies within 192.168.0.0/16'
        $e = $null
        try { Get-BpfRoute 10.65.0.0/40 -ErrorAction Stop } catch { $e = $_ }
        $e.FullyQualifiedErrorId | Should -BeLike 'InvalidAddress,*'
        "$e" | Should -Be "-Address '10.65.0.0/40' has an invalid prefix length; use 0 to 32."
        try { Get-BpfRoute nope -ErrorAction Stop } catch { $e = $_ }
        "$e" | Should -Match ([regex]::Escape("-Address 'nope' is not an IP address or CIDR (examples: 10.65.0.2, 10.65.0.0/16, fd00::/64)."))
    }

    It 'Get-BpfIpSet, Get-BpfArp and Get-BpfInterface' {
        (Get-BpfIpSet 0x7).Member | Should -Be @('10.65.0.5/32', '10.65.2.0/24')
        { Get-BpfIpSet 'set-a' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidSetId,CalicoBpf.Commands.GetBpfIpSetCommand'
        (Get-BpfArp).Interface | Should -Be 'lo'
        (Get-BpfInterface lo).FlagNames | Should -Contain 'host'
    }

    It 'Get-BpfPolicy gives rules with hit counts, and says when Felix wrote nothing' {
        $rules = @(Get-BpfPolicy lo)
        $rules[0].HitCount | Should -Be 42
        $rules[0].Action | Should -Be 'allow'
        { Get-BpfPolicy eth9 -ErrorAction Stop } | Should -Throw -ErrorId 'NoPolicyDebugInfo,CalicoBpf.Commands.GetBpfPolicyCommand'
        { Get-BpfPolicy lo -PolicyDebugPath '/nonexistent/policy' -ErrorAction Stop } | Should -Throw -ErrorId 'NoPolicyDebugInfo,CalicoBpf.Commands.GetBpfPolicyCommand'
    }
}

Describe 'Changes: -WhatIf leaves every map byte-identical, the real change removes exactly what it says' -Skip:(-not $kernel) {
    It 'Remove-BpfConntrack from the pipeline, with its NAT partners' {
        $victims = @(Get-BpfConntrack -Type NatReverse | Select-Object -First 3)
        $before = Get-DataplaneHash
        $victims | Remove-BpfConntrack -WhatIf
        Get-DataplaneHash | Should -Be $before

        $total = @(Get-BpfConntrack).Count
        $result = $victims | Remove-BpfConntrack -Confirm:$false
        $result | Should -BeOfType ([CalicoBpf.ConntrackRemoval])
        $result.Removed | Should -Be 6
        @(Get-BpfConntrack).Count | Should -Be ($total - 6)
        $keys = $victims | ForEach-Object { $_.Key }
        @(Get-BpfConntrack -Type NatForward | Where-Object { $keys -contains $_.ReverseKey }).Count | Should -Be 0
    }

    It 'Remove-BpfConntrack removes a piped entry from the pin path it was read from, whatever -PinPath says' {
        $victim = @(Get-BpfConntrack -Type Normal -Protocol Tcp | Select-Object -First 1)
        $victim.Count | Should -Be 1
        $victim[0].PinPath | Should -Be $fs.PinPath
        $before = Get-DataplaneHash
        $victim | Remove-BpfConntrack -PinPath '/nonexistent/elsewhere' -WhatIf
        Get-DataplaneHash | Should -Be $before

        # ShouldProcess names the target it acts on in the verbose stream.
        $output = @($victim | Remove-BpfConntrack -PinPath '/nonexistent/elsewhere' -Confirm:$false -Verbose 4>&1)
        $said = ($output | Where-Object { $_ -is [System.Management.Automation.VerboseRecord] }) -join "`n"
        $said | Should -Match ([regex]::Escape("$($fs.PinPath)/$($victim[0].MapName) on "))
        $result = $output | Where-Object { $_ -is [CalicoBpf.ConntrackRemoval] }
        $result.Removed | Should -Be 1
        @(Get-BpfConntrack | Where-Object { "$($_.Key)" -eq "$($victim[0].Key)" }).Count | Should -Be 0
    }

    It 'Remove-BpfConntrack with filters removes exactly what Get-BpfConntrack returns' {
        $want = @(Get-BpfConntrack -Protocol Udp -Type Normal)
        $want.Count | Should -BeGreaterThan 0
        $before = Get-DataplaneHash
        Remove-BpfConntrack -Protocol Udp -Type Normal -WhatIf
        Get-DataplaneHash | Should -Be $before
        $others = @(Get-BpfConntrack).Count - $want.Count
        (Remove-BpfConntrack -Protocol Udp -Type Normal -Confirm:$false).Removed | Should -Be $want.Count
        @(Get-BpfConntrack).Count | Should -Be $others
    }

    It 'Remove-BpfConntrack needs a filter, sends entries of another node to that node, and -All empties the table' {
        { Remove-BpfConntrack -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'NoFilter,CalicoBpf.Commands.RemoveBpfConntrackCommand'
        # An entry read on another node is removed there, through the cluster; with no cluster to reach, that is one clear error.
        $foreign = [CalicoBpf.ConntrackEntry]@{ Node = 'another-node'; MapName = 'cali_v4_ct4'; RawKey = [byte[]]::new(16) }
        $env:KUBECONFIG = Join-Path $TestDrive 'no-such-kubeconfig'
        try {
            { $foreign | Remove-BpfConntrack -Confirm:$false -ErrorAction Stop } | Should -Throw -ErrorId 'ClusterUnavailable,CalicoBpf.Commands.RemoveBpfConntrackCommand'
        } finally { Remove-Item Env:KUBECONFIG }
        $before = Get-DataplaneHash
        Remove-BpfConntrack -All -WhatIf
        Get-DataplaneHash | Should -Be $before
        Remove-BpfConntrack -All -Confirm:$false | Out-Null
        @(Get-BpfConntrack).Count | Should -Be 0
    }

    It 'Clear-BpfCounter resets counters; -WhatIf does not' {
        $before = Get-DataplaneHash
        Clear-BpfCounter -WhatIf
        Get-DataplaneHash | Should -Be $before
        (Get-BpfCounter lo | Where-Object Id -eq 'DroppedByPolicy').Ingress | Should -Be 5
        Clear-BpfCounter -Interface lo -Confirm:$false
        (Get-BpfCounter lo | Where-Object Id -eq 'DroppedByPolicy').Ingress | Should -Be 0
        (Get-BpfCounter lo | Where-Object Id -eq 'TotalPackets').Egress | Should -Be 0
    }

    It 'Clear-BpfArp empties the neighbour table; -WhatIf does not' {
        $before = Get-DataplaneHash
        Clear-BpfArp -WhatIf
        Get-DataplaneHash | Should -Be $before
        Clear-BpfArp -Confirm:$false
        @(Get-BpfArp).Count | Should -Be 0
    }

    It 'Remove-BpfConnectTimeProgram -WhatIf keeps links and programs; the real one detaches them' {
        $cgroupRoot = Get-TestCgroupRoot
        if (-not $cgroupRoot) { if ($env:CI -eq 'true') { throw 'no cgroup v2 mount' }; Set-ItResult -Skipped -Because 'no cgroup v2 hierarchy is mounted'; return }
        $cgroup = Join-Path $cgroupRoot "calicobpf-pester-$PID"
        $links = Join-Path $fs.Root 'ctlb'
        $null = New-Item -ItemType Directory $cgroup, $links -Force
        try {
            [CalicoBpf.Interop.BpfPrograms]::AttachAllowAllToCgroup($cgroup, [uint][CalicoBpf.CgroupAttachType]::Connect4, 'calico_connect_', (Join-Path $links 'calico_connect_v4'))
            $listed = @(Get-BpfConnectTimeProgram -CgroupPath $cgroup -LinkPath $links)
            $listed.Count | Should -Be 1
            $listed[0].AttachType | Should -Be 'Connect4'
            Remove-BpfConnectTimeProgram -LinkPath $links -WhatIf
            @(Get-BpfConnectTimeProgram -CgroupPath $cgroup -LinkPath $links).Count | Should -Be 1
            (Get-ChildItem $links).Name | Should -Be 'calico_connect_v4'
            Remove-BpfConnectTimeProgram -LinkPath $links -Confirm:$false
            @(Get-BpfConnectTimeProgram -CgroupPath $cgroup -LinkPath $links -All).Count | Should -Be 0
            Get-ChildItem $links | Should -BeNullOrEmpty
            # Once it is gone, asking again says so (with -WhatIf too), naming where it looked.
            Remove-BpfConnectTimeProgram -LinkPath $links -WhatIf -WarningVariable warn -WarningAction SilentlyContinue
            "$warn" | Should -Match ([regex]::Escape("No connect-time load balancer pins were found (program arrays in $($fs.PinPath), links in $links): nothing to remove."))
        } finally {
            Remove-TestCgroup $cgroup $links
        }
    }
}
