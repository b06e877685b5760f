# Replayed nodes (the fleet benchmark's nodes): a node that answers exec from a recording of a real
# simulated node gives the objects that node gave, and a command it was not recorded with fails, named.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    $script:kubectl = [bool](Get-Command kubectl -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    Import-ModuleUnderTest

    function Read-Node([string] $Node, [string] $Kubeconfig) {
        # What a user reads from a node, by cmdlet: Get-BpfMap exercises an exec with stdin (the pins to describe).
        [ordered]@{
            Counter   = @(Get-BpfCounter -Node $Node -Kubeconfig $Kubeconfig)
            Conntrack = @(Get-BpfConntrack -Node $Node -Kubeconfig $Kubeconfig)
            Nat       = @(Get-BpfNat -Node $Node -Kubeconfig $Kubeconfig)
            Route     = @(Get-BpfRoute -Node $Node -Kubeconfig $Kubeconfig)
            Map       = @(Get-BpfMap -Node $Node -Kubeconfig $Kubeconfig)
        }
    }

    function ConvertTo-Comparable($Objects) {
        # Every property but Node (the replayed node's own name), as JSON, one line per object.
        foreach ($o in $Objects) { $o | Select-Object * -ExcludeProperty Node | ConvertTo-Json -Depth 4 -Compress -WarningAction SilentlyContinue }
    }

    $real = $null
    $replayed = $null
    if (Test-KernelAvailable) {
        $dir = Join-Path $TestDrive 'replay'
        $null = New-Item -ItemType Directory $dir
        @'
install: operator
calicoVersion: v3.30.7
nodes:
  - name: real
    address: 172.18.3.1
    interfaces: [eth0, vxlan.calico]
    record: real.jsonl
    dataplane:
      randomSeed: 5
      conntrack: { tcp: 30, udp: 8, icmp: 2, services: 6, nodePorts: 2 }
      interfaces:
        - name: eth0
          ingress: { TotalPackets: 5000, AcceptedByPolicy: 4980, DroppedByPolicy: 20 }
          egress: { TotalPackets: 4000, AcceptedByPolicy: 4000 }
      routes:
        - { cidr: 10.65.0.0/16, type: remote workload in-pool, nextHop: 172.18.0.99 }
        - { cidr: 10.65.2.0/26, type: remote workload in-pool tunneled, nextHop: 172.18.0.12 }
      services:
        - { id: 1, address: 10.96.0.10, port: 53, protocol: UDP, backends: [10.65.0.5:53, 10.65.2.9:53], localBackends: 1 }
'@ | Set-Content (Join-Path $dir 'real.yaml')
        @'
install: operator
calicoVersion: v3.30.7
replayedNodes: { count: 2, namePrefix: copy-, recording: real.jsonl, execDelayMilliseconds: 20 }
'@ | Set-Content (Join-Path $dir 'replayed.yaml')

        $real = Start-TestCluster -Scenario (Join-Path $dir 'real.yaml') -Directory (Join-Path $dir 'real')
        try { $fromReal = Read-Node 'real' $real.Kubeconfig }
        finally { [CalicoBpf.Cluster.ClusterConnections]::Reset(); Stop-TestCluster $real }
        $replayed = Start-TestCluster -Scenario (Join-Path $dir 'replayed.yaml') -Directory (Join-Path $dir 'replayed')
        $runId = $replayed.RunId
    }
}

AfterAll {
    [CalicoBpf.Cluster.ClusterConnections]::Reset()
    Stop-TestCluster $replayed
}

Describe 'Replayed nodes' -Skip:(-not $kernel) {
    BeforeAll { $fromReplay = Read-Node 'copy-002' $replayed.Kubeconfig }

    It 'are nodes of the API like the others, with a calico-node pod each, and nothing created for them' {
        (Get-CalicoNode -Kubeconfig $replayed.Kubeconfig).Node | Should -Be @('copy-001', 'copy-002')
        @(ip netns list | Where-Object { $_ -like "cbk-$runId-*" }) | Should -BeNullOrEmpty
        Test-Path "/tmp/cbk-$runId-copy-001" | Should -BeFalse
    }

    It 'give the objects the real node gave, field for field, with their own node name (<_>)' -ForEach @('Counter', 'Conntrack', 'Nat', 'Route', 'Map') {
        $fromReal[$_].Count | Should -BeGreaterThan 0
        $fromReplay[$_].Node | Select-Object -Unique | Should -Be 'copy-002'
        ConvertTo-Comparable $fromReplay[$_] | Should -Be (ConvertTo-Comparable $fromReal[$_])
    }

    It 'answer a command they were not recorded with by a failure that names the command' {
        $e = $null
        $null = Get-BpfIpSet -Node copy-001 -Kubeconfig $replayed.Kubeconfig -ErrorVariable e -ErrorAction SilentlyContinue
        $e | Should -HaveCount 1
        $e[0].TargetObject | Should -Be 'copy-001'
        # (Get-BpfIpSet's probe is one Get-BpfMap's was recorded with; its dump's stdin names other pins.)
        "$e" | Should -Match 'replayed node copy-001 has (no recording|recordings) of command \[sh -c .*real\.jsonl(, but none with the \d+ bytes of stdin sent)?: record it from a real node first'
        "$e" | Should -Match 'failed on copy-001 with exit code 126: Internal error occurred'
    }

    It 'answer a recorded command with its recorded stdin as recorded, and with other stdin by a failure (kubectl exec -i)' -Skip:(-not $kubectl) {
        $pod = Get-CalicoNode -Kubeconfig $replayed.Kubeconfig | Where-Object Node -eq 'copy-001'
        $recorded = Get-Content (Join-Path $TestDrive 'replay/real.jsonl') | ConvertFrom-Json | Where-Object stdin | Select-Object -First 1
        $recorded | Should -Not -BeNullOrEmpty
        $in = Join-Path $TestDrive 'stdin'
        $out = Join-Path $TestDrive 'stdout'
        $exec = 'pod=$1; shift; kubectl exec -i -n "$0" "$pod" -c calico-node -- "$@" < "$IN" > "$OUT" 2>&1'
        $env:KUBECONFIG = $replayed.Kubeconfig
        $env:IN = $in
        $env:OUT = $out
        try {
            [IO.File]::WriteAllBytes($in, [Convert]::FromBase64String($recorded.stdin))
            & sh -c $exec $pod.Namespace $pod.Pod @($recorded.command)
            $LASTEXITCODE | Should -Be 0
            [Convert]::ToBase64String([IO.File]::ReadAllBytes($out)) | Should -Be $recorded.stdout
            [IO.File]::WriteAllText($in, ([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($recorded.stdin)) -replace 'cali_', 'other_'))
            & sh -c $exec $pod.Namespace $pod.Pod @($recorded.command)
            $LASTEXITCODE | Should -Not -Be 0
            Get-Content -Raw $out | Should -Match 'has recordings of command \[sh -c .* but none with the \d+ bytes of stdin sent'
        } finally { Remove-Item Env:KUBECONFIG, Env:IN, Env:OUT }
    }
}
