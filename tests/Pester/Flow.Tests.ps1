# Test-BpfFlow on the demo node's dataplane (demo/demo-node.yaml seeded into real maps here), and on the
# same dataplane as node-a of a test cluster: verdicts, the rule that decided, the stages, errors, nothing
# written, and the views.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    Import-ModuleUnderTest -Simulation
    $script:demoNode = Get-Content -Raw (Join-Path $PSScriptRoot '../../demo/demo-node.yaml')
    $fs = $null
    if (Test-KernelAvailable) {
        $fs = New-TestBpfFs
        $script:policyDir = Join-Path $TestDrive 'policy'
        $links = [System.Collections.Generic.Dictionary[string, int]]::new()
        $links['eth0'] = 3; $links['cali7f3a1b2c9d0'] = 5; $links['vxlan.calico'] = 7
        $sim = [CalicoBpf.Simulation.SimulatedDataplane]::Claim($fs.PinPath)
        try { [CalicoBpf.Simulation.NodeScenario]::Parse($demoNode).Seed($sim, $links, $policyDir) } finally { $sim.Dispose() }
        $env:NODENAME = 'demo-node-1'
        $PSDefaultParameterValues['*-Bpf*:PinPath'] = $fs.PinPath
        $PSDefaultParameterValues['Test-BpfFlow:PolicyDebugPath'] = $policyDir
    }
}

AfterAll {
    $PSDefaultParameterValues.Remove('*-Bpf*:PinPath')
    $PSDefaultParameterValues.Remove('Test-BpfFlow:PolicyDebugPath')
    Remove-Item Env:NODENAME -ErrorAction SilentlyContinue
    Remove-TestBpfFs $fs
}

Describe 'Test-BpfFlow on this node' -Skip:(-not $kernel) {
    It 'names the rule that denies a flow, with its match id and hit count' {
        $p = Test-BpfFlow 10.65.0.8 10.65.2.17:23
        $p | Should -BeOfType ([CalicoBpf.FlowPrediction])
        $p.Verdict | Should -Be 'Deny'
        $p.RuleMatchId | Should -Be 4242003
        $p.RuleHitCount | Should -Be 7
        $p.Reason | Should -Match 'default/knp\.default\.deny-legacy'
        @($p.Stages.Stage) | Should -Be @('interface', 'conntrack', 'NAT', 'route', 'route', 'policy')
        ($p.Stages | Where-Object Stage -eq 'route')[1].Decision | Should -Match 'another node, next hop 172\.18\.0\.12, tunnelled'
        $p.Node | Should -Be 'demo-node-1'
    }

    It 'allows a local pod what both policies allow; to another node it is Unknown and says where the rest is decided' {
        $local = Test-BpfFlow 10.65.0.8 10.65.0.5:8080
        $local.Verdict | Should -Be 'Allow'
        $local.RuleMatchId | Should -Be 4242010 -Because 'the destination''s ingress rule decides last'
        $local.Reason | Should -Match 'egress policy of cali7f3a1b2c9d0 and the ingress policy of cali7f3a1b2c9d0 allow it'
        $remote = Test-BpfFlow 10.65.0.8 10.65.3.4:8080
        $remote.Verdict | Should -Be 'Unknown'
        $remote.RuleMatchId | Should -Be 4242001
        $remote.Reason | Should -Match 'decided on the node at 172\.18\.0\.13'
        $svc = Test-BpfFlow 10.65.0.8 10.96.31.7:80
        $svc.Verdict | Should -Be 'Unknown'
        $svc.Reason | Should -Match 'depends on the backend the program picks at random: 10\.65\.0\.8:8080: Allow .*10\.65\.3\.4:8080: Unknown'
        ($svc.Stages | Where-Object Stage -eq 'NAT').Decision | Should -Be 'DNAT to one of 2'
    }

    It 'denies at the end of the tier what no rule allows, and a blackhole route' {
        $udp = Test-BpfFlow 10.65.0.8 10.96.0.10:53 -Protocol UDP
        $udp.Verdict | Should -Be 'Deny'
        ($udp.Stages | Where-Object Stage -eq 'policy').Evidence | Should -Match 'end of tier default'
        $hole = Test-BpfFlow 10.65.0.8 10.65.0.70 -Port 80
        $hole.Verdict | Should -Be 'Deny'
        $hole.Reason | Should -Match 'blackhole route \(10\.65\.0\.64/26'
    }

    It 'is Unknown, and says why, for a missing backend, a source that is no local workload, and without policy debug files' {
        $missing = Test-BpfFlow 10.65.0.8 10.96.90.3:9090
        $missing.Verdict | Should -Be 'Unknown'
        $missing.Reason | Should -Match 'missing backend: ICMP port unreachable'
        (Test-BpfFlow 10.65.1.20 10.65.0.8:8080).Reason | Should -Match '10\.65\.1\.20 is not a workload on demo-node-1'
        $empty = Join-Path $TestDrive 'no-policy'
        $null = New-Item -ItemType Directory $empty -Force
        $blind = Test-BpfFlow 10.65.0.8 10.65.2.17:23 -PolicyDebugPath $empty
        $blind.Verdict | Should -Be 'Unknown'
        $blind.Reason | Should -Match 'bpfPolicyDebugEnabled is true \(Set-FelixBpfConfig -BpfPolicyDebugEnabled \$true\)'
    }

    It 'does not trust a debug file Felix recorded an error in, nor one it was still writing' {
        $copy = Join-Path $TestDrive 'policy-copy'
        $null = New-Item -ItemType Directory $copy -Force
        Copy-Item (Join-Path $policyDir '*') $copy
        $file = Join-Path $copy 'cali7f3a1b2c9d0_egress_v4.json'
        $doc = Get-Content -Raw $file | ConvertFrom-Json
        $doc.error = 'attaching the program failed'
        $doc | ConvertTo-Json -Depth 10 | Set-Content $file
        $failed = Test-BpfFlow 10.65.0.8 10.65.2.17:23 -PolicyDebugPath $copy
        $failed.Verdict | Should -Be 'Unknown'
        $failed.Reason | Should -Match 'Felix recorded an error building it \(attaching the program failed\)'
        Set-Content $file (Get-Content -Raw $file).Substring(0, 40)
        $half = Test-BpfFlow 10.65.0.8 10.65.2.17:23 -PolicyDebugPath $copy
        $half.Verdict | Should -Be 'Unknown'
        $half.Reason | Should -Match 'cannot be read'
    }

    It 'explains piped conntrack entries as new connections on the node they came from' {
        $entries = @(Get-BpfConntrack -Type NatForward | Select-Object -First 5)
        $p = @($entries | Test-BpfFlow)
        $p.Count | Should -Be $entries.Count
        for ($i = 0; $i -lt $p.Count; $i++) {
            $p[$i].Source | Should -Be $entries[$i].Source
            $p[$i].Destination | Should -Be $entries[$i].ServiceEndpoint
        }
    }

    It 'takes flows piped by property name (a CSV of flows), each with its own protocol, port and node' {
        $flows = @(
            [pscustomobject]@{ Source = '10.65.0.8'; Destination = '10.65.2.17:23' }
            [pscustomobject]@{ Source = '10.65.0.8'; Destination = '10.96.0.10'; Protocol = 'UDP'; Port = 53 }
            [pscustomobject]@{ Source = '192.168.4.20'; Destination = '172.18.0.10:22'; Interface = 'eth0' }
            [pscustomobject]@{ Source = '10.65.0.8'; Destination = '10.65.0.5:8080' }
        )
        $p = @($flows | Test-BpfFlow)
        @($p | ForEach-Object { "$($_.Protocol) $($_.Destination) $($_.Verdict)" }) | Should -Be @('Tcp 10.65.2.17:23 Deny', 'Udp 10.96.0.10:53 Deny', 'Tcp 172.18.0.10:22 Allow', 'Tcp 10.65.0.5:8080 Allow')
        ($p[3].Stages | Select-Object -First 1).Where | Should -Be 'cali7f3a1b2c9d0 tc ingress (from workload)' -Because 'the third record''s -Interface is not the fourth''s'
    }

    It 'writes nothing: every pinned map is byte for byte the same' {
        $before = Get-PinHash $fs.PinPath
        $null = Test-BpfFlow 10.65.0.8 10.65.2.17:23
        $null = Get-BpfConntrack | Select-Object -First 20 | Test-BpfFlow
        Get-PinHash $fs.PinPath | Should -Be $before
    }

    It 'refuses what is not a flow, with the forms it takes' {
        { Test-BpfFlow 10.65.0.8 nope:80 -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidEndpoint,CalicoBpf.Commands.TestBpfFlowCommand'
        { Test-BpfFlow 10.65.0.8 10.65.2.17 -ErrorAction Stop } | Should -Throw -ExpectedMessage '*Which port does 10.65.2.17 take*'
        { Test-BpfFlow 10.65.0.8 10.65.2.17:23 -Port 80 -ErrorAction Stop } | Should -Throw -ErrorId 'PortTwice,CalicoBpf.Commands.TestBpfFlowCommand'
        { Test-BpfFlow fd00::1 '[fd00::2]:80' -ErrorAction Stop } | Should -Throw -ErrorId 'IPv6NotPredicted,CalicoBpf.Commands.TestBpfFlowCommand'
        { Test-BpfFlow 10.65.0.8 10.65 -Port 80 -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidEndpoint,CalicoBpf.Commands.TestBpfFlowCommand'
        { Test-BpfFlow 10.65.0.8:1000 10.65.2.17:23 -SourcePort 2000 -ErrorAction Stop } | Should -Throw -ErrorId 'PortTwice,CalicoBpf.Commands.TestBpfFlowCommand'
        { Test-BpfFlow 10.65.0.8 10.65.2.17:7 -Protocol ICMP -ErrorAction Stop } | Should -Throw -ErrorId 'IcmpHasNoPorts,CalicoBpf.Commands.TestBpfFlowCommand'
    }

    It 'matches ICMP by type and code: the egress policy allows only TCP, so an echo request ends at the end of the tier' {
        $ping = Test-BpfFlow 10.65.0.8 10.65.2.17 -Protocol ICMP
        $ping.Verdict | Should -Be 'Deny'
        $ping.DestinationPort | Should -Be 8 -Because 'type 8 (echo request), code 0'
        ($ping.Stages | Where-Object Stage -eq 'policy').Evidence | Should -Match 'end of tier default'
        (Test-BpfFlow 10.65.0.8 10.65.2.17 -Protocol ICMP -IcmpType 3 -IcmpCode 4).DestinationPort | Should -Be (3 + 4 * 256)
    }

    It 'starts on a host interface with -Interface: the host endpoint''s policy, then this host or the node port''s backends' {
        # SSH is one of Felix's failsafe ports (cali_v4_fsafes): policy is skipped, whoever asks.
        $ssh = Test-BpfFlow 10.1.2.3 172.18.0.10:22 -Interface eth0
        $ssh.Verdict | Should -Be 'Allow' -Because $ssh.Reason
        $ssh.RuleMatchId | Should -BeNullOrEmpty
        ($ssh.Stages | Where-Object Stage -eq 'policy').Decision | Should -Be 'skipped: failsafe port'
        ($ssh.Stages | Where-Object Stage -eq 'policy').Evidence | Should -Match 'inbound tcp:22 from 0\.0\.0\.0/0 \(cali_v4_fsafes; counter: accepted by failsafe\)'
        # Another port to the host: the host endpoint's normal tiers decide.
        $metrics = Test-BpfFlow 10.65.1.20 172.18.0.10:9100 -Interface eth0
        $metrics.Verdict | Should -Be 'Allow' -Because $metrics.Reason
        $metrics.RuleMatchId | Should -Be 5150002
        ($metrics.Stages | Where-Object Stage -eq 'policy').Decision | Should -Be 'host endpoint: allow'
        $other = Test-BpfFlow 192.168.4.20 172.18.0.10:9100 -Interface eth0
        $other.Verdict | Should -Be 'Deny'
        $other.Reason | Should -Match '^the host endpoint policy of eth0: .*end of tier default'
        # Node port 30080 on this node's address: its exact frontend (a node port has one on each of the node's
        # addresses); the local backend's ingress policy takes only the cluster; the other backend is on another node.
        $np = Test-BpfFlow 192.168.4.20 172.18.0.10:30080 -Interface eth0
        $np.Verdict | Should -Be 'Unknown'
        ($np.Stages | Where-Object Stage -eq 'NAT').Decision | Should -Be 'DNAT to one of 2'
        $np.Reason | Should -Match '10\.65\.0\.8:8080: Deny \(the ingress policy of cali7f3a1b2c9d0'
        $np.Reason | Should -Match '10\.65\.3\.4:8080: Unknown \(.*the backend''s node at 172\.18\.0\.13 NATs it again and decides its ingress policy'
        @($np.Stages | Where-Object Stage -eq 'return').Count | Should -Be 1
        (Test-BpfFlow 192.168.4.20 172.18.0.10:30081 -Interface eth0).Stages.Decision | Should -Contain 'no service'
        (Test-BpfFlow 192.168.4.20 172.18.0.10:22 -Interface nope).Reason | Should -Match 'no state for an interface nope'
        (Test-BpfFlow 10.65.0.5 10.65.0.8:8080 -Interface cali7f3a1b2c9d0).Verdict | Should -Be 'Allow' -Because 'a workload''s own interface is the usual start'
        (Test-BpfFlow 10.65.1.20 10.65.0.8:8080 -Interface cali7f3a1b2c9d0).Reason | Should -Match 'not the workload on cali7f3a1b2c9d0: its source check'
    }

    It 'starts at a tc egress hook with -Hook Egress: into a workload, or out of a host interface' {
        # Into the pod on cali7f3a1b2c9d0: its ingress policy takes the cluster only.
        $in = Test-BpfFlow 10.65.1.20 10.65.0.8:8080 -Interface cali7f3a1b2c9d0 -Hook Egress
        $in.Verdict | Should -Be 'Allow' -Because $in.Reason
        $in.RuleMatchId | Should -Be 4242010
        $in.Stages[0].Where | Should -Be 'cali7f3a1b2c9d0 tc egress (to workload)'
        (Test-BpfFlow 192.168.4.20 10.65.0.8:8080 -Interface cali7f3a1b2c9d0 -Hook Egress).Verdict | Should -Be 'Deny'
        (Test-BpfFlow 172.18.0.10 10.65.0.8:8080 -Interface cali7f3a1b2c9d0 -Hook Egress).Reason | Should -Match 'from this host to its workload .* always allowed'
        (Test-BpfFlow 10.65.1.20 10.65.3.4:8080 -Interface cali7f3a1b2c9d0 -Hook Egress).Reason | Should -Match 'is not the workload on cali7f3a1b2c9d0'
        # Out of eth0: its host endpoint has no egress file, and Felix writes debug files here; an outbound failsafe port from the host.
        $out = Test-BpfFlow 172.18.0.10 192.0.2.9:443 -Interface eth0 -Hook Egress
        $out.Verdict | Should -Be 'Allow'
        ($out.Stages | Where-Object Stage -eq 'policy').Decision | Should -Be 'no host endpoint policy'
        ($out.Stages | Where-Object Stage -eq 'policy').Evidence | Should -Match 'debug files in'
        $dns = Test-BpfFlow 172.18.0.10 192.0.2.53:53 -Protocol UDP -Interface eth0 -Hook Egress
        ($dns.Stages | Where-Object Stage -eq 'policy').Decision | Should -Be 'skipped: failsafe port'
        { Test-BpfFlow 10.65.0.8 10.65.0.5:8080 -Hook Egress -ErrorAction Stop } | Should -Throw -ErrorId 'HookNeedsInterface,CalicoBpf.Commands.TestBpfFlowCommand'
    }

    It 'names the Maglev table for a Maglev service reached from a host interface, with each backend''s share' {
        $p = Test-BpfFlow 192.168.4.20 10.96.12.40:443 -Interface eth0
        $nat = $p.Stages | Where-Object Stage -eq 'NAT'
        $nat.Decision | Should -Be 'Maglev: one of 3'
        # Each backend's share is its slots in the table Get-BpfNatMaglev reads.
        foreach ($g in Get-BpfNatMaglev -ServiceId 9 | Group-Object Backend) {
            $nat.Evidence | Should -Match ([regex]::Escape("$($g.Name) ($($g.Count) of 31 slots)"))
        }
        # From a workload the tc program does not use Maglev (HAS_MAGLEV is from-host-endpoint only).
        ((Test-BpfFlow 10.65.0.8 10.96.12.40:443).Stages | Where-Object Stage -eq 'NAT').Decision | Should -Be 'DNAT to one of 3'
    }

    It 'checks UDP to the VXLAN port as VXLAN first, and from a Calico host takes it as tunnel traffic' {
        $outside = Test-BpfFlow 192.168.4.20 172.18.0.10:4789 -Interface eth0 -Protocol UDP
        ($outside.Stages | Where-Object Stage -eq 'tunnel').Decision | Should -Be 'checked as VXLAN first'
        $outside.Reason | Should -Match 'Felix''s VXLAN port'
        $peer = Test-BpfFlow 172.18.0.11 172.18.0.10:4789 -Interface eth0 -Protocol UDP
        $peer.Verdict | Should -Be 'Unknown'
        $peer.Reason | Should -Match 'from a Calico host the program takes a datagram whose first byte has VXLAN''s I flag as tunnel traffic'
    }

    It 'reads like a trace in 80 columns, and -View Summary is one line a flow with every column' {
        $text = Test-BpfFlow 10.65.0.8 10.65.2.17:23 | Out-String -Width 80
        foreach ($line in $text -split "`r?`n") { $line.TrimEnd().Length | Should -BeLessOrEqual 80 -Because "'$line'" }
        $text | Should -Match '(?m)^Deny\s+TCP 10\.65\.0\.8:49152 -> 10\.65\.2\.17:23'
        $text | Should -Match '(?m)^  policy\s+deny'
        $summary = '10.65.2.17:23', '10.96.31.7:80' | ForEach-Object { Test-BpfFlow 10.65.0.8 $_ } | Format-Table -View Summary | Out-String -Width 80
        $summary | Should -Match 'Verdict\s+Protocol\s+Source\s+Destination\s+Backend'
        @($summary -split "`r?`n" | Where-Object { $_ -match '^(Allow|Deny|Unknown) ' }).Count | Should -Be 2
    }
}

Describe 'Test-BpfFlow on a node of a cluster' -Skip:(-not $kernel) {
    BeforeAll {
        # node-a holds the demo node's dataplane, so a remote prediction must equal the local one (v3.32.1: a
        # release with the Maglev map the demo node has).
        $dataplane = ($demoNode -split "`n" | ForEach-Object { '      ' + $_ }) -join "`n"
        $scenario = Join-Path $TestDrive 'flow-cluster.yaml'
        @"
install: operator
calicoVersion: v3.32.1
calicoNodeEnv: { FELIX_DEFAULTENDPOINTTOHOSTACTION: DROP }
felixConfigurations:
  default: { bpfEnabled: true }
pods:
  - { name: client-6d8f9, namespace: demo, node: node-a, ip: 10.65.0.8, labels: { app: client } }
  - { name: web-7c4b2, namespace: demo, node: node-b, ip: 10.65.3.4, labels: { app: web } }
services:
  - { name: web, namespace: demo, clusterIp: 10.96.31.7, selector: { app: web }, ports: [ { name: http, port: 80, targetPort: 8080 } ] }
  - { name: two-ports, namespace: demo, clusterIp: 10.96.44.2, selector: { app: web }, ports: [ { name: a, port: 8443 }, { name: b, port: 9443 } ] }
  - { name: dns, namespace: demo, clusterIp: 10.96.0.10, selector: { app: web }, ports: [ { name: dns, protocol: UDP, port: 53 }, { name: metrics, port: 9153 } ] }
nodes:
  - name: node-a
    address: 172.18.0.10
    interfaces: [eth0, cali7f3a1b2c9d0, vxlan.calico]
    dataplane:
$dataplane
  - name: node-b
    address: 172.18.0.13
    interfaces: [eth0, cali3b4c5d6e7f8, vxlan.calico]
    dataplane:
      node: node-b
      hostAddress: 172.18.0.13
      randomSeed: 13
      conntrack: { tcp: 5 }
      # A connection the connect-time load balancer made: its entry is to the backend, not to the service.
      connections:
        - { protocol: TCP, client: "10.65.3.4:41010", backend: "10.65.0.8:8080" }
      # The node port Felix programs on every node, with this node's backend first (local).
      services:
        - { id: 4, address: 10.96.31.7, port: 80, protocol: TCP, nodePort: 30080, backends: [10.65.3.4:8080, 10.65.0.8:8080], localBackends: 1 }
      routes:
        - { cidr: 10.65.3.4/32, type: local workload in-pool, interface: cali3b4c5d6e7f8 }
        - { cidr: 10.65.0.0/26, type: remote workload in-pool tunneled, nextHop: 172.18.0.10 }
        - { cidr: 172.18.0.13/32, type: local host }
      interfaces:
        - name: eth0
        - name: cali3b4c5d6e7f8
        - name: vxlan.calico
      policies:
        - interface: cali3b4c5d6e7f8
          hook: ingress
          tiers:
            - name: default
              policies:
                - name: demo/knp.default.web-from-dns
                  rules:
                    - { action: allow, protocol: TCP, ports: [8080], sources: [10.65.0.5/32], matchId: 7300001, hits: 41 }
        - interface: cali3b4c5d6e7f8
          hook: egress
          tiers:
            - name: default
              policies:
                - name: demo/knp.default.web-egress
                  rules:
                    - { action: allow, matchId: 7300200, hits: 5 }
        # A host endpoint on eth0 with normal policy only: what it forwards to a workload passes (no apply-on-forward tiers).
        - interface: eth0
          hook: ingress
          tiers:
            - name: default
              policies:
                - name: default.node-b-ssh
                  rules:
                    - { action: allow, protocol: TCP, ports: [22], matchId: 7300100, hits: 2 }
  - name: node-c
    address: 172.18.0.12
    calicoNode: false
"@ | Set-Content $scenario
        $script:cluster = Start-TestCluster -Scenario $scenario -Directory (Join-Path $TestDrive 'cluster')
        $script:kc = @{ Kubeconfig = $cluster.Kubeconfig }
        # The local node's pin and policy paths are this file's defaults; remotely the node's own apply.
        $script:here = @{ PinPath = $fs.PinPath; PolicyDebugPath = $policyDir }
        $PSDefaultParameterValues.Remove('*-Bpf*:PinPath')
        $PSDefaultParameterValues.Remove('Test-BpfFlow:PolicyDebugPath')
    }
    AfterAll {
        Stop-TestCluster $cluster
        $PSDefaultParameterValues['*-Bpf*:PinPath'] = $fs.PinPath
        $PSDefaultParameterValues['Test-BpfFlow:PolicyDebugPath'] = $policyDir
    }

    It 'predicts each flow as it does on the node itself' {
        foreach ($to in '10.65.2.17:23', '10.96.31.7:80', '10.96.90.3:9090', '10.65.0.70:80') {
            $remote = Test-BpfFlow @kc -Node node-a 10.65.0.8 $to
            $local = Test-BpfFlow @here 10.65.0.8 $to
            $remote.Node | Should -Be 'node-a'
            $localStages = @($local.Stages | ForEach-Object { "$($_.Stage) $($_.Decision)" })
            $remoteStages = @($remote.Stages | ForEach-Object { "$($_.Stage) $($_.Decision)" })
            if (@($remote.Path).Count -eq 1) {
                $remote.Verdict | Should -Be $local.Verdict -Because "to $to"
                $remote.RuleMatchId | Should -Be $local.RuleMatchId -Because "to $to"
                $remote.RuleHitCount | Should -Be $local.RuleHitCount -Because "to $to"
                $remoteStages | Should -Be $localStages -Because "to $to"
            }
            else {
                # Remotely the flow goes on to the next node's tables; locally it stops where this node's end.
                $remoteStages | Select-Object -First $localStages.Count | Should -Be $localStages -Because "to $to"
            }
        }
    }

    It 'takes pods and services by name, predicts on the source pod''s node, and names what it meets' {
        $p = Test-BpfFlow @kc pod/demo/client-6d8f9 svc/demo/web
        $p.Node | Should -Be 'node-a'
        $p.Destination | Should -Be '10.96.31.7:80'
        $p.Verdict | Should -Be 'Unknown' -Because 'one backend is this node''s pod (allowed), the other node-b''s, whose policy denies this client'
        $p.SourcePod | Should -Be 'demo/client-6d8f9'
        $p.DestinationService | Should -Be 'demo/web'
        # Felix's default bpfConnectTimeLoadBalancing TCP: the pod's connect() picks the backend, not its tc program.
        $nat = $p.Stages | Where-Object Stage -eq 'NAT'
        $nat.Where | Should -Be 'connect() (connect-time load balancer)'
        $nat.Evidence | Should -Match 'bpfConnectTimeLoadBalancing TCP \(Felix''s default in v3\.32\): the socket is connected to the backend'
        $direct = Test-BpfFlow @kc -Node node-a 10.65.0.8 10.65.3.4:8080 -Resolve
        $direct.DestinationPod | Should -Be 'demo/web-7c4b2'
        ($direct | Out-String -Width 80) | Should -Match 'pod demo/client-6d8f9 -> pod demo/web-7c4b2'
        { Test-BpfFlow @kc pod/demo/nope svc/demo/web -ErrorAction Stop } | Should -Throw -ErrorId 'PodNotFound,CalicoBpf.Commands.TestBpfFlowCommand'
        { Test-BpfFlow @kc pod/demo/client-6d8f9 svc/demo/two-ports -ErrorAction Stop } | Should -Throw -ExpectedMessage '*the ports 8443/Tcp, 9443/Tcp: give one with -Port*'
        (Test-BpfFlow @kc pod/demo/client-6d8f9 svc/demo/two-ports -Port 9443).Destination | Should -Be '10.96.44.2:9443'
        (Test-BpfFlow @kc pod/demo/client-6d8f9 svc/demo/dns -Port 53).Protocol | Should -Be 'Udp' -Because 'the service''s port 53 is UDP only'
        (Test-BpfFlow @kc pod/demo/client-6d8f9 svc/demo/dns -Port 53 -Protocol TCP).Protocol | Should -Be 'Tcp' -Because '-Protocol given wins'
        { Test-BpfFlow @kc svc/demo/web pod/demo/web-7c4b2 -Port 8080 -ErrorAction Stop } | Should -Throw -ErrorId 'ServiceAsSource,CalicoBpf.Commands.TestBpfFlowCommand'
    }

    It 'reads each next node once when flows from two nodes cross, and leaves no exec session or thread when stopped early' {
        $flows = @(
            [pscustomobject]@{ Node = 'node-a'; Source = '10.65.0.5'; Destination = '10.65.3.4:8080' }
            [pscustomobject]@{ Node = 'node-b'; Source = '10.65.3.4'; Destination = '10.65.0.8:8080' }
        )
        $p = @($flows | Test-BpfFlow @kc)
        @($p | ForEach-Object { ($_.Path -join '>') + ' ' + $_.Verdict }) | Should -Be @('node-a>node-b Allow', 'node-b>node-a Allow') -Because ($p.Reason -join ' | ')
        $null = $flows | Test-BpfFlow @kc | Select-Object -First 1
        $deadline = [DateTime]::UtcNow.AddSeconds(5)
        while (((Get-ClusterActiveExecs $cluster) -gt 0 -or (Get-CalicoBpfThread)) -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
        Get-ClusterActiveExecs $cluster | Should -Be 0
        Get-CalicoBpfThread | Should -BeNullOrEmpty
    }

    It 'finds a connect-time load-balanced connection by its backend' {
        $p = Test-BpfFlow @kc -Node node-b 10.65.3.4:41010 10.96.31.7:80
        $ct = $p.Stages | Where-Object Stage -eq 'conntrack' | Select-Object -First 1
        $ct.Decision | Should -Be 'existing entry: a SYN still goes through policy'
        $ct.Evidence | Should -Match 'the connect-time load balancer connected the socket to 10\.65\.0\.8:8080'
        @($p.Stages | Where-Object Stage -eq 'NAT').Count | Should -Be 0 -Because 'the connection exists: no NAT lookup'
        (Test-BpfFlow @kc -Node node-b 10.65.3.4:41011 10.96.31.7:80).Stages[1].Decision | Should -Be 'new flow' -Because 'another client port has no entry'
    }

    It 'names the counter a denied flow moves, with its value' {
        $p = Test-BpfFlow @kc -Node node-a 10.65.0.8 10.65.2.17:23
        $p.Verdict | Should -Be 'Deny'
        $p.DropCounter | Should -Be 'cali7f3a1b2c9d0 ingress DroppedByPolicy: 32 so far' -Because 'the demo dataplane counts 32 policy drops on that interface''s ingress'
        ($p | Out-String -Width 80) | Should -Match 'counter cali7f3a1b2c9d0 ingress DroppedByPolicy: 32 so far'
        (Test-BpfFlow @kc -Node node-a 10.65.0.8 10.65.0.70:80).DropCounter | Should -Be 'cali7f3a1b2c9d0 ingress DroppedBlackholeRoute: 0 so far'
        (Test-BpfFlow @kc -Node node-a 10.65.0.8 10.65.0.5:8080).DropCounter | Should -BeNullOrEmpty -Because 'an allowed flow moves no drop counter'
        # A service with loadBalancerSourceRanges: connect() looks it up from 0.0.0.0 and leaves the socket alone, so the
        # tc program drops it, even under the connect-time load balancer (connect.h:26-29).
        $ranged = Test-BpfFlow @kc -Node node-a 10.65.0.8 172.18.100.1:443
        ($ranged.Stages | Where-Object Stage -eq 'NAT').Where | Should -Be 'cali7f3a1b2c9d0 tc ingress (from workload)'
        $ranged.DropCounter | Should -Match '^cali7f3a1b2c9d0 ingress DroppedUnauthSource: \d+ so far$'
    }

    It 'follows a flow to a workload on another node onto that node''s tables, and names the rule there' {
        $denied = Test-BpfFlow @kc -Node node-a 10.65.0.8 10.65.3.4:8080
        $denied.Verdict | Should -Be 'Deny' -Because $denied.Reason
        @($denied.Path) | Should -Be @('node-a', 'node-b')
        $denied.Node | Should -Be 'node-a'
        $denied.Reason | Should -Match '^on node-b, the ingress policy of cali3b4c5d6e7f8: .*end of tier default'
        $stages = @($denied.Stages | ForEach-Object { "$($_.Stage) $($_.Decision)" })
        $stages | Should -Be @('interface ready', 'conntrack new flow', 'NAT no service', 'route source check passed',
            'route a workload on another node, next hop 172.18.0.13, tunnelled', 'policy allow',
            'interface into the tunnel', 'policy no host endpoint policy',
            'interface from the tunnel', 'conntrack new flow', 'policy no host endpoint policy', 'route the local workload on cali3b4c5d6e7f8',
            'interface ready', 'policy deny')
        ($denied.Stages | Where-Object Stage -eq 'interface')[1].Where | Should -Be 'vxlan.calico tc egress (to host endpoint)'
        ($denied.Stages | Where-Object Stage -eq 'interface')[2].Where | Should -Be 'node-b: vxlan.calico tc ingress (from host endpoint)'
        $allowed = Test-BpfFlow @kc -Node node-a 10.65.0.5 10.65.3.4:8080
        $allowed.Verdict | Should -Be 'Allow'
        $allowed.RuleMatchId | Should -Be 7300001 -Because 'node-b''s ingress rule decides last'
        $allowed.RuleHitCount | Should -Be 41 -Because 'the hit count is node-b''s'
        ($allowed | Out-String -Width 80) | Should -Match '\(node-a -> node-b\)'
        # Locally only this node's tables can be read: the rest is Unknown, and it says where.
        (Test-BpfFlow @here 10.65.0.8 10.65.3.4:8080).Reason | Should -Match 'decided on the node at 172\.18\.0\.13: ask that node'
        # A next hop no node has, and a node without calico-node, are named.
        (Test-BpfFlow @kc -Node node-a 10.65.0.8 10.65.2.17:8080).Reason | Should -Match 'node-c runs no calico-node'
    }

    It 'takes a node port from outside through the node-port tunnel to the backend''s node, and says the return path' {
        $p = Test-BpfFlow @kc -Node node-a 192.168.4.20 172.18.0.10:30080 -Interface eth0
        # Both backends' ingress policies take only the cluster (node-a's) or one pod (node-b's).
        $p.Verdict | Should -Be 'Deny' -Because $p.Reason
        $p.Reason | Should -Match '^every backend of 172\.18\.0\.10:30080 gets Deny'
        ($p.Stages | Where-Object { $_.Where -like 'node-b:*' -and $_.Stage -eq 'policy' } | Select-Object -Last 1).Decision | Should -Be 'deny'
        @($p.Path) | Should -Be @('node-a', 'node-b')
        ($p.Stages | Where-Object Stage -eq 'return').Decision | Should -Be 'Tunnel: replies come back through this node'
        ($p.Stages | Where-Object { $_.Where -like 'node-b:*' } | Select-Object -First 1).Decision | Should -Be 'from the node-port tunnel'
        ($p.Stages | Where-Object { $_.Where -like 'node-b: eth0*' -and $_.Stage -eq 'policy' }).Decision | Should -Contain 'host endpoint: allow' -Because 'node-b''s eth0 host endpoint has no apply-on-forward tier'
        ($p.Stages | Where-Object { $_.Where -like 'node-b:*' -and $_.Stage -eq 'NAT' }).Decision | Should -Be 'DNAT to the local backend'
    }

    It 'reads defaultEndpointToHostAction from what Felix on the node uses: DROP from the DaemonSet denies workload to host' {
        $p = Test-BpfFlow @kc -Node node-a 10.65.0.8 172.18.0.10:8080
        $p.Verdict | Should -Be 'Deny'
        $p.Reason | Should -Match 'defaultEndpointToHostAction is Drop \(FELIX_DEFAULTENDPOINTTOHOSTACTION in DaemonSet'
        ($p.Stages | Select-Object -Last 1).Stage | Should -Be 'host'
        (Test-BpfFlow @here 10.65.0.8 172.18.0.10:8080).Verdict | Should -Be 'Unknown' -Because 'locally no cluster says it'
    }

    It 'takes nodes by name: node/NAME is the node''s InternalIP, and as -Source that node''s host sends it' {
        $toHost = Test-BpfFlow @kc pod/demo/client-6d8f9 node/node-a -Port 8080
        $toHost.Destination | Should -Be '172.18.0.10:8080'
        $toHost.Verdict | Should -Be 'Deny' -Because 'defaultEndpointToHostAction is DROP on this cluster'
        $fromHost = Test-BpfFlow @kc node/node-a 10.65.0.8:8080
        $fromHost.Node | Should -Be 'node-a'
        $fromHost.Verdict | Should -Be 'Allow'
        $fromHost.Reason | Should -Match 'from this host to its workload'
        { Test-BpfFlow @kc node/nope 10.65.0.8:80 -ErrorAction Stop } | Should -Throw -ErrorId 'NodeNotFound,CalicoBpf.Commands.TestBpfFlowCommand'
    }

    It 'completes pods for -Source, pods and services for -Destination, and nothing for an address' {
        function Complete([string] $Line) { @((TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches.CompletionText) }
        Complete "Test-BpfFlow -Kubeconfig $($cluster.Kubeconfig) pod/demo/c" | Should -Be @('pod/demo/client-6d8f9')
        Complete "Test-BpfFlow -Kubeconfig $($cluster.Kubeconfig) -Source pod/demo/client-6d8f9 -Destination svc/demo/w" | Should -Be @('svc/demo/web')
        Complete "Test-BpfFlow -Kubeconfig $($cluster.Kubeconfig) -Source 10.65" | Should -BeNullOrEmpty
        $all = @(Complete "Test-BpfFlow -Kubeconfig $($cluster.Kubeconfig) pod/demo/client-6d8f9 ")
        foreach ($want in 'pod/demo/client-6d8f9', 'pod/demo/web-7c4b2', 'svc/demo/web', 'svc/demo/two-ports', 'node/node-a', 'node/node-b') { $all | Should -Contain $want }
    }

    It 'explains entries read with -Node on that node' {
        $entries = @(Get-BpfConntrack @kc -Node node-a -Type NatForward | Select-Object -First 3)
        $p = @($entries | Test-BpfFlow @kc)
        $p.Count | Should -Be $entries.Count
        $p.Node | Sort-Object -Unique | Should -Be 'node-a'
    }
}

Describe 'Test-BpfFlow in the troubleshooting guide''s situations' -Skip:(-not $kernel) {
    BeforeAll {
        $PSDefaultParameterValues.Remove('*-Bpf*:PinPath')
        $PSDefaultParameterValues.Remove('Test-BpfFlow:PolicyDebugPath')
        $script:guide = Start-TestCluster -Scenario (Join-Path $PSScriptRoot 'guide-broken.yaml') -Directory (Join-Path $TestDrive 'guide')
    }
    AfterAll {
        Stop-TestCluster $guide
        $PSDefaultParameterValues['*-Bpf*:PinPath'] = $fs.PinPath
        $PSDefaultParameterValues['Test-BpfFlow:PolicyDebugPath'] = $policyDir
    }

    It 'a nearly full conntrack table, an IPIP pool and debug logging: the stages a pod''s flow takes say each' {
        $p = Test-BpfFlow -Kubeconfig $guide.Kubeconfig -Node gb-a 10.66.0.5 10.66.1.7:8080
        ($p.Stages | Where-Object Stage -eq 'conntrack')[0].Evidence | Should -Match 'cali_v4_ct3 holds 60 of 64 entries \(94 %\): when it is full the program cannot create this flow''s entry and drops the packet'
        ($p.Stages | Where-Object Stage -eq 'route')[1].Evidence | Should -Match 'ipipMode Always: the host stack encapsulates it through tunl0'
        ($p.Stages | Where-Object Stage -eq 'interface')[0].Evidence | Should -Match 'bpfLogLevel Debug \(FelixConfiguration default\): the programs log this flow''s packets'
        # gb-old, where 10.66.1.7 lives, fell back to iptables: the rest cannot be told, and the reason says why.
        $p.Verdict | Should -Be 'Unknown'
        $p.Reason | Should -Match "Calico's eBPF dataplane does not run on gb-old"
    }

    It 'kube-proxy still running while Felix cleans up its rules: a service flow''s NAT stage says they fight' {
        $p = Test-BpfFlow -Kubeconfig $guide.Kubeconfig -Node gb-a 10.66.0.5 10.96.6.6:80
        $nat = $p.Stages | Where-Object Stage -eq 'NAT'
        $nat.Decision | Should -Be 'DNAT'
        $nat.Evidence | Should -Match 'kube-proxy runs too \(kube-proxy DaemonSet: \d+ of \d+ pods ready\) while Felix deletes its iptables rules \(bpfKubeProxyIptablesCleanupEnabled true'
        # A flow that meets no service says nothing of it.
        (Test-BpfFlow -Kubeconfig $guide.Kubeconfig -Node gb-a 10.66.0.5 10.66.1.7:8080).Stages.Evidence -join ' ' | Should -Not -Match 'kube-proxy runs too'
    }

    It 'DSR: a node port from outside whose backend is on another node is answered by that node directly' {
        $p = Test-BpfFlow -Kubeconfig $guide.Kubeconfig -Node gb-a 203.0.113.9 172.18.6.10:30666 -Interface eth0
        $return = $p.Stages | Where-Object Stage -eq 'return'
        $return.Decision | Should -Be 'DSR: the backend''s node answers the client directly'
        $return.Evidence | Should -Match '^bpfExternalServiceMode DSR \(FelixConfiguration default\): replies leave 172\.18\.6\.11 with this node''s address 172\.18\.6\.10'
    }

    It 'a UDP node port on the VXLAN port: checked as VXLAN first, and taken as tunnel traffic from a Calico host' {
        $nokp = Start-TestCluster -Scenario (Join-Path $PSScriptRoot 'guide-nokubeproxy.yaml') -Directory (Join-Path $TestDrive 'guide-nokp')
        try {
            $outside = Test-BpfFlow -Kubeconfig $nokp.Kubeconfig -Node gn-a 203.0.113.9 172.18.8.10:30080 -Interface eth0 -Protocol UDP
            ($outside.Stages | Where-Object Stage -eq 'tunnel').Decision | Should -Be 'checked as VXLAN first'
            ($outside.Stages | Where-Object Stage -eq 'tunnel').Evidence | Should -Match '^UDP to vxlanPort 30080 \(FelixConfiguration default\)'
            $outside.Reason | Should -Match 'UDP to 30080, Felix''s VXLAN port'
            $peer = Test-BpfFlow -Kubeconfig $nokp.Kubeconfig -Node gn-a 172.18.8.11 172.18.8.10:30080 -Interface eth0 -Protocol UDP
            $peer.Verdict | Should -Be 'Unknown'
            $peer.Reason | Should -Match 'from a Calico host the program takes a datagram whose first byte has VXLAN''s I flag as tunnel traffic, so the service on that port gets it only when'
        }
        finally { Stop-TestCluster $nokp }
    }

    It 'a healthy cluster: a flow its policies allow is Allow, and no stage raises a guide situation' {
        $healthy = Start-TestCluster -Scenario (Join-Path $PSScriptRoot 'guide-healthy.yaml') -Directory (Join-Path $TestDrive 'guide-healthy')
        try {
            $p = Test-BpfFlow -Kubeconfig $healthy.Kubeconfig -Node gh-a 10.67.0.5 10.67.0.6:8080
            $p.Verdict | Should -Be 'Allow' -Because $p.Reason
            $p.RuleMatchId | Should -Be 6710002
            $text = ($p.Stages | ForEach-Object { "$($_.Decision) $($_.Evidence)" }) -join "`n"
            $text | Should -Not -Match 'entries \(\d+ %\)|ipipMode|bpfLogLevel Debug|DSR|VXLAN port'
        }
        finally { Stop-TestCluster $healthy }
    }

    It 'a node whose kernel is too old: Unknown, because the eBPF dataplane does not run there' {
        $p = Test-BpfFlow -Kubeconfig $guide.Kubeconfig -Node gb-old 10.66.0.5 10.66.0.9:80
        $p.Verdict | Should -Be 'Unknown'
        $p.Node | Should -Be 'gb-old'
        $p.Reason | Should -Match "Calico's eBPF dataplane does not run on gb-old: .*not running in eBPF mode there"
        $p.Reason | Should -Match 'Test-CalicoEbpf -Node gb-old'
    }
}
