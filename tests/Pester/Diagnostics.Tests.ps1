# Test-CalicoEbpf: every check passing on a healthy cluster, and failing or warning where the
# troubleshooting guide's situations are reproduced (real kernel data for the per-node checks, the
# guide's log lines verbatim).
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    Import-ModuleUnderTest -Simulation

    function Start-Scenario([string] $Name) { Start-ScenarioCluster $Name $TestDrive }
    function Stop-Scenario($Cluster) { Stop-ScenarioCluster $Cluster }

    function Find($Results, [string] $Check, [string] $Node = '') { @($Results | Where-Object { $_.Check -eq $Check -and $_.Node -eq $Node }) }
}

Describe 'The guide''s situations, end to end' -Skip:(-not $kernel) {
    BeforeAll {
        $cluster = Start-Scenario guide-broken
        $results = @(Test-CalicoEbpf)
    }
    AfterAll { Stop-Scenario $cluster }

    It 'writes results worst first, each with a check id, status and message' {
        $results[0] | Should -BeOfType ([CalicoBpf.CheckResult])
        $order = $results | ForEach-Object { [int]$_.Status }
        ($order | Sort-Object) | Should -Be $order
        $results.Check | Sort-Object -Unique | Should -Be (@([CalicoBpf.Diagnostics.Checks]::All.Id) | Sort-Object)
    }

    It 'kernel too old: Felix fell back, quoted from the log with its error' {
        $r = Find $results bpf-running gb-old
        $r.Status | Should -Be 'Fail'
        $r.Message | Should -Be 'Felix fell back to iptables: kernel is too old (have: 4.15.0-213 but want at least: 5.3.0).'
        $r.Evidence | Should -BeExactly '2026-11-26 05:00:00.000 [ERROR][1] felix/daemon.go 1608: BPF dataplane mode enabled but not supported by the kernel.  Disabling BPF mode. error=kernel is too old (have: 4.15.0-213 but want at least: 5.3.0)'
        (Find $results bpf-running gb-a).Status | Should -Be 'Pass'
        # Nothing to read on a node without maps: skipped, not failed.
        (Find $results drops gb-old).Status | Should -Be 'Skipped'
    }

    It 'kube-proxy still running while Felix cleans up its rules: a Fail with both fixes' {
        $r = Find $results kube-proxy-conflict gb-a
        $r.Status | Should -Be 'Fail'
        $r.Evidence | Should -Match 'kube-proxy DaemonSet: 2 of 2 pods ready; bpfKubeProxyIptablesCleanupEnabled true'
        $r.Remediation | Should -Match 'non-calico'
        $r.Remediation | Should -Match ([regex]::Escape('Set-FelixBpfConfig -BpfKubeProxyIptablesCleanupEnabled:$false'))
        (Find $results kube-proxy-conflict gb-old).Status | Should -Be 'Pass'
    }

    It 'the kube-proxy fix keeps kube-proxy on the node that still needs it, in the same run' {
        # gb-old fell back to iptables (bpf-running Fail): kube-proxy serves its services. Disabling
        # kube-proxy everywhere, the plain fix, would cut them.
        $r = Find $results kube-proxy-conflict gb-a
        $r.Remediation | Should -Not -Match '^Disable kube-proxy'
        $r.Remediation | Should -Match 'Do not disable kube-proxy everywhere: gb-old still needs it'
        $r.Remediation | Should -Match ([regex]::Escape('kubectl label node gb-old non-calico=true, then kubectl patch ds -n kube-system kube-proxy'))
        # Checking gb-a alone, gb-old's log is not read (one node, one log): the safe fix comes first.
        $one = Find @(Test-CalicoEbpf -Check kube-proxy-conflict -Node gb-a) kube-proxy-conflict gb-a
        $one.Status | Should -Be 'Fail'
        $one.Remediation | Should -Match '^Leave kube-proxy alone and stop Felix removing its rules: Set-FelixBpfConfig -BpfKubeProxyIptablesCleanupEnabled:\$false  or disable kube-proxy .* once Test-CalicoEbpf -Check bpf-running passes on every node'
    }

    It 'DSR on AWS, IPIP pools, Debug logging on: warnings with the commands that fix them' {
        (Find $results dsr-cloud gb-a).Message | Should -Match 'source/destination check must be disabled'
        (Find $results dsr-cloud gb-a).Status | Should -Be 'Warning'
        $o = Find $results overlay
        ($o.Status, $o.Message) | Should -Be @('Warning', 'IP pools with IPIP (default-ipv4-ippool): IPIP performs poorly in eBPF mode; VXLAN is recommended.')
        $d = Find $results debug-logging gb-a
        ($d.Status, $d.Remediation) | Should -Be @('Warning', 'Set-FelixBpfConfig -Clear bpfLogLevel')
        (Find $results nodeport-vxlan).Evidence | Should -Be 'vxlanPort 8472 (FelixConfiguration default)'
    }

    It 'drops on eth0 and a nearly full conntrack table, read from the node''s real maps' {
        $d = Find $results drops gb-a
        ($d.Status, $d.Evidence) | Should -Be @('Warning', 'eth0 by policy 120, eth0 malformed IP packets 2')
        $c = Find $results capacity gb-a
        $c.Status | Should -Be 'Warning'
        $c.Message | Should -Match 'cali_v4_ct3 93.8%'
        # v3.30.7 grows conntrack itself (bpfMapSizeConntrackScaling DoubleIfFull, the default); the size by hand is the other way.
        $c.Remediation | Should -Be 'Felix doubles cali_v4_ct3 itself when it is nearly full (bpfMapSizeConntrackScaling DoubleIfFull, /var/lib/calico/bpf_ct_map_size) and uses the new size when calico-node restarts; to size it now: Set-FelixBpfConfig -BpfMapSizeConntrack 128  (Felix restarts to resize)'
        $c.Message | Should -Be 'Above 90 % full: cali_v4_ct3 93.8% (when full new connections cannot be tracked).'
    }

    It '-Quiet, -Check, -Node, JSON and JUnit for runbooks' {
        Test-CalicoEbpf -Quiet | Should -BeFalse
        @(Test-CalicoEbpf -Check drops, capacity -Node gb-a).Count | Should -Be 2
        @(Test-CalicoEbpf -Check 'dsr*').Check | Sort-Object -Unique | Should -Be 'dsr-cloud'
        ($results | ConvertTo-Json -Depth 3 | ConvertFrom-Json)[0].Status | Should -Be $results[0].Status.ToString() -Because 'a status is written by name'
        $xmlPath = Join-Path $TestDrive 'results.xml'
        $null = Test-CalicoEbpf -JUnitPath $xmlPath
        [IO.File]::ReadAllBytes($xmlPath)[0..4] | Should -Be ([Text.Encoding]::ASCII.GetBytes('<?xml'))   # no byte-order mark
        [xml]$x = Get-Content -Raw $xmlPath
        [int]$x.testsuites.testsuite.tests | Should -Be $results.Count
        [int]$x.testsuites.testsuite.failures | Should -Be @($results | Where-Object Status -eq 'Fail').Count
        @($x.testsuites.testsuite.testcase | Where-Object { $_.failure }).Count | Should -Be @($results | Where-Object Status -eq 'Fail').Count
        { Test-CalicoEbpf -Check nope -ErrorAction Stop } | Should -Throw '*No check matches -Check nope*'
    }

    It 'renders its default view grouped by status' {
        $text = $results | Out-String -Width 200
        $text | Should -Match 'Status: Fail'
        $text.IndexOf('Status: Fail') | Should -BeLessThan $text.IndexOf('Status: Pass')
    }
}

Describe 'Conntrack sized per CPU' -Skip:(-not $kernel) {
    It 'capacity names bpfMapSizePerCpuConntrack, which sizes the map where it is set' {
        $cluster = Start-Scenario capacity-percpu
        try {
            $c = @(Test-CalicoEbpf -Check capacity -Node pc-a)
            $c.Count | Should -Be 1
            $c[0].Status | Should -Be 'Warning'
            $c[0].Remediation | Should -Match 'Felix doubles cali_v4_ct\d itself when it is nearly full'
            $c[0].Remediation | Should -Match 'to size it now: Set-FelixBpfConfig -BpfMapSizePerCpuConntrack 64  \(Felix restarts to resize\)$'
        }
        finally { Stop-Scenario $cluster }
    }
}

Describe 'Services against NAT: frontends, ready backends, traffic policies, one id per service (Calico #13279)' -Skip:(-not $kernel) {
    BeforeAll {
        $cluster = Start-Scenario services
        $results = @(Test-CalicoEbpf -Check services)
    }
    AfterAll { Stop-Scenario $cluster }

    It 'passes where NAT is what Felix writes from the Services and EndpointSlices' {
        $r = Find $results services sv-a
        ($r.Status, $r.Evidence) | Should -Be @('Pass', '5 service ports, 11 NAT frontends')
        # What it passed on: every kind of frontend, the terminating and the unready pods left out.
        $nat = @(Get-BpfNat -Node sv-a)
        @($nat | Where-Object Frontend -eq '172.18.11.10:30443').ServiceId | Should -Be 3
        @($nat | Where-Object { $_.Frontend -eq '203.0.113.10:443' -and $_.IsDropEntry }).Count | Should -Be 1
        @($nat | Where-Object Frontend -eq '255.255.255.255:30443').Count | Should -Be 0 -Because 'internalTrafficPolicy Local has no wildcard node port'
        (@($nat | Where-Object Frontend -eq '10.96.1.20:80').Backends | ForEach-Object { "$($_.AddressValue):$($_.Port)" }) | Should -Be '10.69.0.6:8080'
    }

    It 'two services on one NAT id fail as Calico issue #13279, with the fix and what removing the maps costs' {
        $r = Find $results services sv-b
        $r.Status | Should -Be 'Fail'
        $r.Message | Should -BeLike '1 NAT id(s) shared by two services, whose backends each overwrites on every sync: id 1 by shop/cart:http/TCP and shop/web:http/TCP (Calico issue #13279); also *'
        $r.Message | Should -Match 'shop/web:http/TCP ClusterIP 10\.96\.1\.10:80: sends to 10\.69\.0\.6:8080, not a ready endpoint'
        $r.Remediation | Should -Match '^Fixed by Calico PR #13388 .* are removed, and sv-b''s service connections break until Felix writes them anew: remove them, then restart calico-node on sv-b \(kubectl delete pod -n calico-system calico-node-\w+\), then Test-CalicoEbpf -Check services -Node sv-b$'
    }

    It 'a backend that is not ready, a lost node port and a wrong traffic-policy flag fail, each named' {
        $r = Find $results services sv-c
        $r.Status | Should -Be 'Fail'
        $r.Message | Should -Be ('4 difference(s) between the Services and EndpointSlices and NAT: ' +
            'shop/web:http/TCP ClusterIP 10.96.1.10:80: 3 backends (0 local) where the node has 2 ready endpoints (0 local), ' +
            'shop/web:http/TCP ClusterIP 10.96.1.10:80: sends to 10.69.2.5:8080, not a ready endpoint, ' +
            'shop/cart:http/TCP ClusterIP 10.96.1.20:80: flags ExternalLocal where its traffic policies give none, ' +
            'shop/lb:https/TCP NodePort 172.18.11.12:30443: no frontend.')
        $r.Remediation | Should -Match 'beyond bpfKubeProxyMinSyncPeriod is state it lost: restart calico-node on sv-c'
    }

    It 'a frontend of no Service warns' {
        $r = Find $results services sv-d
        ($r.Status, $r.Message) | Should -Be @('Warning', '1 NAT frontend(s) of no Service: 10.96.1.99:80/TCP (id 9) (left after their Service was deleted; they still answer).')
    }

    It 'reads the same offline from a bundle' {
        $zip = Join-Path $TestDrive 'services.zip'
        Export-CalicoBpfDiagnostic -Node * -Path $zip -Window 1 | Out-Null
        $offline = @(Test-CalicoEbpf -Bundle $zip -Check services)
        ($offline | ForEach-Object { "$($_.Node) $($_.Status) $($_.Message)" } | Sort-Object) | Should -Be ($results | ForEach-Object { "$($_.Node) $($_.Status) $($_.Message)" } | Sort-Object)
    }
}

Describe 'Entries of pods that are gone: conntrack (Calico #13570) and NAT backends (#8650)' -Skip:(-not $kernel) {
    BeforeAll {
        $cluster = Start-Scenario stale-endpoints
        $results = @(Test-CalicoEbpf -Check stale-endpoints)
    }
    AfterAll { Stop-Scenario $cluster }

    It 'a connection kept to a deleted pod warns, naming the address and the command that removes it' {
        $r = Find $results stale-endpoints se-a
        $r.Status | Should -Be 'Warning'
        $r.Message | Should -Be '1 conntrack entries are of 1 pod address(es) no pod has: 10.68.2.77 (1) (Calico issue #13570).'
        $r.Remediation | Should -Be 'Get-BpfConntrack -Node se-a -Address 10.68.2.77 | Remove-BpfConntrack'
        # The tunnel address 10.68.0.1 is in the pool, but the host route says it is no pod's: not named.
        $r.Message | Should -Not -Match '10\.68\.0\.1\b'
    }

    It 'a NAT backend at an address no pod has fails, with the restart that rewrites NAT' {
        $r = Find $results stale-endpoints se-b
        $r.Status | Should -Be 'Fail'
        $r.Message | Should -Match '^1 NAT backend\(s\) send to pod addresses no pod has: 10\.96\.0\.50:80 -> 10\.68\.3\.3:8080 \(Calico issue #8650'
        $r.Remediation | Should -Match '^Felix writes NAT from the EndpointSlices when it starts: restart calico-node on se-b \(kubectl delete pod -n calico-system calico-node-'
    }

    It 'passes where every pool address is a pod''s, and after the fix' {
        (Find $results stale-endpoints se-c).Status | Should -Be 'Pass'
        Get-BpfConntrack -Node se-a -Address 10.68.2.77 | Remove-BpfConntrack -Confirm:$false | Out-Null
        (Find @(Test-CalicoEbpf -Check stale-endpoints -Node se-a) stale-endpoints se-a).Status | Should -Be 'Pass'
    }
}

Describe 'Routes: every pod routed to its node, none to a node that is gone' -Skip:(-not $kernel) {
    BeforeAll {
        $cluster = Start-Scenario routes
        $results = @(Test-CalicoEbpf -Check routes)
    }
    AfterAll { Stop-Scenario $cluster }

    It 'a node without a route to another node''s pods and blocks, and with routes to a node that is gone, fails with all' {
        $r = Find $results routes ra-a
        $r.Status | Should -Be 'Fail'
        $r.Message | Should -Be ('1 pod(s) not routed to their node: shop/db-1 10.69.3.4 on ra-c: no route; ' +
            '2 IPAM block(s) of other nodes not routed to them: 10.69.2.64/26 of ra-b: no route, 10.69.3.0/26 of ra-c: no route; ' +
            '2 route(s) to nodes that are gone (no node has the address): 10.69.9.0/26 via 172.18.11.99, 172.18.11.99/32 (remote host).')
        $r.Remediation | Should -Match '^Felix writes the routes from the cluster''s nodes and IPAM blocks: restart calico-node on ra-a \(kubectl delete pod -n calico-system calico-node-'
    }

    It 'a pod sent to the wrong node fails, naming where it goes' {
        (Find $results routes ra-c).Message | Should -Be ('1 pod(s) not routed to their node: shop/cart-1 10.69.2.9 on ra-b: routed via 172.18.11.10 (ra-a, 10.69.2.0/26); ' +
            '1 IPAM block(s) of other nodes not routed to them: 10.69.2.0/26 of ra-b: routed via 172.18.11.10 (ra-a).')
    }

    It 'interface-state: an entry of an interface that is gone fails (Calico #6935), the others pass' {
        (Find @(Test-CalicoEbpf -Check interface-state) interface-state ra-a).Status | Should -Be 'Pass'
        # Planted with bpftool on ra-a's own pins: state for ifindex 77, which ra-a does not have.
        $pins = "/tmp/cbk-$($cluster.RunId)-ra-a/bpffs/tc/globals"
        $iface = (Get-ChildItem $pins -Filter 'cali_iface*' | Select-Object -First 1).FullName
        $value = [CalicoBpf.Maps.InterfaceStateMap]::EncodeValue(4, [CalicoBpf.InterfaceStateFlags]'Workload, V4Ready', 'caliGone0000001', [int[]]@(-1))
        & bpftool map update pinned $iface key hex 4d 00 00 00 value hex @($value | ForEach-Object { '{0:x2}' -f $_ })
        $LASTEXITCODE | Should -Be 0
        $r = @(Test-CalicoEbpf -Check interface-state)
        $a = Find $r interface-state ra-a
        $a.Status | Should -Be 'Fail'
        $a.Message | Should -Be '1 interface-state entry is of interfaces the node does not have: caliGone0000001 (ifindex 77: no such interface) (state Felix did not remove; a leak like Calico issue #6935 fills the map until new pods get no programs).'
        $a.Remediation | Should -Match '^Felix writes the interface state again when it starts: restart calico-node on ra-a'
        (Find $r interface-state ra-b).Status | Should -Be 'Pass'
    }

    It 'interface-state: a workload interface without Calico''s programs fails, naming the hooks' {
        $r = Find @(Test-CalicoEbpf -Check interface-state -Node ra-c) interface-state ra-c
        $r.Status | Should -Be 'Fail'
        $r.Message | Should -Be '1 workload interface(s) without Calico''s program at a hook: cali3c4d5e6f7a8 (ingress, egress) (their pods'' traffic passes with no policy, NAT or conntrack).'
        $r.Evidence | Should -Be '0 interface-state entries, 5 interfaces, 1 workload interfaces'
        $r.Remediation | Should -Match 'restart calico-node on ra-c, then Get-BpfInterface -Node ra-c -Interface cali3c4d5e6f7a8$'
        # The healthy nodes' workload interfaces carry cali_tc_preamble at both hooks, as Felix attaches it.
        foreach ($hook in 'ingress', 'egress') {
            (& ip netns exec "cbk-$($cluster.RunId)-ra-b" tc filter show dev cali2b3c4d5e6f7 $hook) -join ' ' | Should -Match 'direct-action .*name cali_tc_preambl'
        }
        (Find @(Test-CalicoEbpf -Check interface-state -Node ra-b) interface-state ra-b).Evidence | Should -Be '0 interface-state entries, 5 interfaces, 1 workload interfaces'
    }

    It 'passes where every pod and IPAM block is routed to its node' {
        $ok = Find $results routes ra-b
        ($ok.Status, $ok.Evidence) | Should -Be @('Pass', '4 routes; 3 pods on 3 nodes; 4 IPAM blocks') -Because 'a pending affinity and a virtual block are not judged'
    }
}

Describe 'A healthy cluster, and a read-only identity' -Skip:(-not $kernel) {
    BeforeAll { $cluster = Start-Scenario guide-healthy }
    AfterAll { Stop-Scenario $cluster }

    It 'every check passes' {
        $results = @(Test-CalicoEbpf)
        @($results | Where-Object Status -ne 'Pass') | Should -BeNullOrEmpty
        (Find $results service-implementation gh-a).Message | Should -Be 'kube-proxy is disabled and Calico''s eBPF dataplane implements services here.'
        Test-CalicoEbpf -Quiet | Should -BeTrue
    }

    It 'missing rights are reported once; the checks that need them are skipped, the others still run' {
        $results = @(Test-CalicoEbpf -Kubeconfig $cluster.ReadonlyKubeconfig)
        $a = Find $results access
        $a.Status | Should -Be 'Fail'
        $a.Message | Should -Match 'create pods/exec'
        (Find $results drops gh-a).Status | Should -Be 'Skipped'
        (Find $results drops gh-a).Message | Should -Match 'may not exec into calico-node'
        (Find $results bpf-requested).Status | Should -Be 'Pass'
        @($results | Where-Object Status -eq 'Fail').Count | Should -Be 1
    }
}

Describe 'kube-proxy disabled on a node without eBPF; eBPF requested in one place only' -Skip:(-not $kernel) {
    It 'services break where eBPF does not run, and the API server address is missing' {
        $cluster = Start-Scenario guide-nokubeproxy
        try {
            $results = @(Test-CalicoEbpf)
            (Find $results service-implementation gn-old).Status | Should -Be 'Fail'
            (Find $results service-implementation gn-a).Status | Should -Be 'Pass'
            $cm = Find $results service-implementation
            ($cm.Status, $cm.Remediation) | Should -Be @('Fail', 'kubectl create configmap -n kube-system kubernetes-services-endpoint --from-literal=KUBERNETES_SERVICE_HOST=<api-server-address> --from-literal=KUBERNETES_SERVICE_PORT=<port>')
            (Find $results service-sync-load).Message | Should -Match 'bpfKubeProxyEndpointSlicesEnabled is false'
            (Find $results overlay).Message | Should -Match 'No IP pool uses an overlay but vxlanEnabled is true'
            (Find $results kube-proxy-conflict).Status | Should -Be 'Pass'
            $v = Find $results nodeport-vxlan
            ($v.Status, $v.Evidence) | Should -Be @('Fail', 'vxlanPort 30080 (FelixConfiguration default); default/dns-ext nodePort 30080/UDP')
        }
        finally { Stop-Scenario $cluster }
    }

    It 'FelixConfiguration and the Installation disagree' {
        $cluster = Start-Scenario guide-disagree
        try {
            $r = Find @(Test-CalicoEbpf -Check bpf-requested) bpf-requested
            $r.Status | Should -Be 'Fail'
            $r.Evidence | Should -Be 'FelixConfiguration default bpfEnabled: true; Installation default linuxDataplane: Iptables'
            $r.Remediation | Should -Be 'Set-FelixBpfConfig -BpfEnabled:$true -UpdateInstallation'
        }
        finally { Stop-Scenario $cluster }
    }
}

Describe 'Test-CalicoEbpf -Local' -Skip:(-not $kernel) {
    BeforeAll {
        $fs = New-TestBpfFs
        $scenario = [CalicoBpf.Simulation.NodeScenario]::Parse(@'
node: local-node
randomSeed: 9
conntrackMaxEntries: 40
conntrack: { tcp: 38 }
interfaces:
  - name: lo
    ingress: { TotalPackets: 100, DroppedByPolicy: 7 }
'@)
        $links = [System.Collections.Generic.Dictionary[string, int]]::new()
        $links['lo'] = 1
        $sim = [CalicoBpf.Simulation.SimulatedDataplane]::Claim($fs.PinPath)
        try { $scenario.Seed($sim, $links) } finally { $sim.Dispose() }
        # The trace buffer is read through tracefs; mounted here when the machine has it unmounted.
        $mountedTracefs = $false
        if (-not [CalicoBpf.Interop.TraceFs]::FindTracingDirectory()) {
            & mount -t tracefs nodev /sys/kernel/tracing
            $mountedTracefs = $LASTEXITCODE -eq 0
        }
    }
    AfterAll {
        Remove-TestBpfFs $fs
        if ($mountedTracefs) { & umount /sys/kernel/tracing }
    }

    It 'runs the node-local checks on this machine, without a cluster' {
        $results = @(Test-CalicoEbpf -Local -PinPath $fs.PinPath)
        $results.Check | Sort-Object | Should -Be @('access', 'bpf-running', 'capacity', 'debug-logging', 'drops', 'interface-state')
        (Find $results interface-state ([Environment]::MachineName)).Status | Should -Be 'Pass'
        (Find $results access ([Environment]::MachineName)).Status | Should -Be 'Pass'
        (Find $results drops ([Environment]::MachineName)).Evidence | Should -Be 'lo by policy 7'
        (Find $results capacity ([Environment]::MachineName)).Message | Should -Match 'cali_v4_ct4 95%'
    }

    It 'debug logging, locally: Calico lines in the kernel''s trace buffer' {
        $tracing = [CalicoBpf.Interop.TraceFs]::FindTracingDirectory()
        try {
            # Opening trace with O_TRUNC empties the buffer (.NET's FileMode.Create does not: it truncates separately).
            & sh -c ': > "$1/trace"' sh $tracing
            (Find @(Test-CalicoEbpf -Local -PinPath $fs.PinPath -Check debug-logging) debug-logging ([Environment]::MachineName)).Status | Should -Be 'Pass'
            [IO.File]::WriteAllText((Join-Path $tracing 'trace_marker'), "cali7f3a1b2c9d0-I: New packet at ifindex=7; mark=0`n")
            $r = Find @(Test-CalicoEbpf -Local -PinPath $fs.PinPath -Check debug-logging) debug-logging ([Environment]::MachineName)
            ($r.Status, $r.Evidence) | Should -Be @('Warning', '1 Calico lines in the trace buffer')
        }
        finally { & sh -c ': > "$1/trace"' sh $tracing }
    }
}
