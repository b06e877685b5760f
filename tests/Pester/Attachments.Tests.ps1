# Programs attached the ways Felix attaches them (bpfAttachType TC, TCX; netkit needs a kernel with
# CONFIG_NETKIT, see AttachmentTests): Get-BpfInterface and the drops check locally in a test-owned
# namespace, and remotely through the test cluster's node, with the TCX links pinned where Felix pins
# them (/sys/fs/bpf/tcx/<iface>_<hook> inside the node) and its clsact qdisc gone, as Felix removes it.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    $script:bpftool75 = if ($kernel) { Get-Bpftool75Directory }
}

BeforeAll {
    $manifestPath = Import-ModuleUnderTest -PassThru
    $bpftool75 = Get-Bpftool75Directory

    function Invoke-InNetns([string] $Netns, [string] $Script) {
        # A pwsh inside the namespace (the kernel queries and attachments are per network namespace).
        $out = & ip netns exec $Netns (Get-PwshPath) -NoProfile -NonInteractive -Command "`$ErrorActionPreference = 'Stop'; Import-Module '$manifestPath'; $Script"
        if ($LASTEXITCODE) { throw "pwsh in $Netns failed: $out" }
        $out
    }

    function Add-TcxLinks([string] $Netns, [string] $Device, [string] $PinDirectory) {
        # Felix's TCX attachment: cali_tc_preamble linked at both hooks, the links pinned as <iface>_<hook>.
        $null = New-Item -ItemType Directory -Force $PinDirectory
        Invoke-InNetns $Netns "`$i = ([CalicoBpf.Interop.NetLink]::ListLinks().Values | Where-Object Name -eq '$Device').IfIndex
            `$null = [CalicoBpf.Interop.BpfPrograms]::AttachToDevice(`$i, 'TcxIngress', 'cali_tc_preamble', '$PinDirectory/${Device}_ingress', 0)
            `$null = [CalicoBpf.Interop.BpfPrograms]::AttachToDevice(`$i, 'TcxEgress', 'cali_tc_preamble', '$PinDirectory/${Device}_egress', 0)"
    }

    function Start-TcxNode([string] $Name, [string] $Release) {
        # The demo cluster on a Calico release, its node-a attached as Felix with bpfAttachType TCX leaves
        # it: eth0's links pinned in /sys/fs/bpf/tcx (inside the node), its clsact qdisc removed. The
        # node's calico-node container carries that release's bpftool (7.5 from v3.30, 5.3 in v3.26).
        $dir = Join-Path $TestDrive $Name
        $null = New-Item -ItemType Directory -Force $dir
        $scenario = Join-Path $dir 'cluster.yaml'
        (Get-Content -Raw (Join-Path $PSScriptRoot '../../demo/cluster.yaml')) -replace '(?m)^calicoVersion: .*$', "calicoVersion: $Release" | Set-Content $scenario
        $c = Start-TestCluster -Scenario $scenario -Directory $dir
        $PSDefaultParameterValues['*:Kubeconfig'] = $c.Kubeconfig
        & ip netns exec "cbk-$($c.RunId)-node-a" tc qdisc del dev eth0 clsact
        Add-TcxLinks "cbk-$($c.RunId)-node-a" eth0 "/tmp/cbk-$($c.RunId)-node-a/bpffs/tcx"
        $c
    }

    function Stop-TcxNode($Cluster) {
        $PSDefaultParameterValues.Remove('*:Kubeconfig')
        [CalicoBpf.Cluster.ClusterConnections]::Reset()
        Stop-TestCluster $Cluster
    }

    function Get-TcxEntries([string] $Netns, [string] $Device) {
        # bpftool 7.5's own listing: the ground truth Get-BpfInterface is held to.
        (& ip netns exec $Netns (Join-Path $bpftool75 'bpftool') -j net show | ConvertFrom-Json).tc | Where-Object { $_.devname -eq $Device -and $_.kind -like 'tcx/*' }
    }
}

Describe 'TCX attachments on this machine' -Skip:(-not ($kernel -and $bpftool75)) {
    BeforeAll {
        $ns = "cbt-tcx-$PID"
        & ip netns add $ns
        $fs = New-TestBpfFs
        foreach ($c in @('link add cbtx0 type veth peer name cbtx1', 'link set cbtx0 up', 'link set cbtx1 up')) { & ip -n $ns @($c -split ' ') }
        # cbtx0 keeps TC (clsact and a filter); cbtx1 is attached with TCX and has no qdisc of Calico's.
        Invoke-InNetns $ns "Add-Type -Path '$(Get-SimulationPath)'
            `$links = [System.Collections.Generic.Dictionary[string, int]]::new()
            foreach (`$l in [CalicoBpf.Interop.NetLink]::ListLinks().Values) { `$links[`$l.Name] = `$l.IfIndex }
            `$sim = [CalicoBpf.Simulation.SimulatedDataplane]::Claim('$($fs.PinPath)')
            try { [CalicoBpf.Simulation.NodeScenario]::Parse(""interfaces:`n  - { name: cbtx0, ingress: { TotalPackets: 10 } }`n  - { name: cbtx1, ingress: { TotalPackets: 20, DroppedByPolicy: 4 } }"").Seed(`$sim, `$links) } finally { `$sim.Dispose() }
            `$null = [CalicoBpf.Interop.BpfPrograms]::PinTcProgram('cali_tc_preamble', '$($fs.Root)/tc_cbtx0', 0)"
        & ip netns exec $ns tc qdisc add dev cbtx0 clsact
        & ip netns exec $ns tc filter add dev cbtx0 ingress bpf da object-pinned "$($fs.Root)/tc_cbtx0"
        Add-TcxLinks $ns cbtx1 "$($fs.Root)/tcx"
    }
    AfterAll {
        & ip netns del $ns 2>$null
        Remove-TestBpfFs $fs
    }

    It 'Get-BpfInterface says how each interface is attached, with the programs and links bpftool 7.5 lists' {
        $states = Invoke-InNetns $ns "Get-BpfInterface -PinPath '$($fs.PinPath)' | ConvertTo-Json -Depth 4 -EnumsAsStrings" | ConvertFrom-Json
        $tc = $states | Where-Object Name -eq cbtx0
        $tcx = $states | Where-Object Name -eq cbtx1
        $tc.AttachKind | Should -Be 'TC'
        $tc.Attachments.AttachPoint | Should -Be 'clsact/ingress'
        $tcx.AttachKind | Should -Be 'TCX'
        $truth = @(Get-TcxEntries $ns cbtx1)
        $truth.Count | Should -Be 2
        $tcx.Attachments.AttachPoint | Should -Be $truth.kind
        $tcx.Attachments.ProgramId | Should -Be $truth.prog_id
        $tcx.Attachments.LinkId | Should -Be $truth.link_id
        $tcx.Attachments.Hook | Should -Be @('Ingress', 'Egress')
        $tcx.Attachments.ProgramName | Should -Be @('cali_tc_preambl', 'cali_tc_preambl')
        (& ip netns exec $ns tc -j qdisc show dev cbtx1 | ConvertFrom-Json).kind | Should -Not -Contain 'clsact'
    }

    It 'the drops check takes the TCX interface''s drops from the counters map and says why' {
        $r = Invoke-InNetns $ns "Test-CalicoEbpf -Local -PinPath '$($fs.PinPath)' -Check drops | ConvertTo-Json -EnumsAsStrings" | ConvertFrom-Json
        $r.Status | Should -Be 'Warning'
        $r.Evidence | Should -Be 'cbtx1 by policy 4; no clsact qdisc on 1 interface with Calico programs attached with TCX or netkit (bpfAttachType), where tc -s qdisc counts no drops; their drops from the counters map: cbtx1 (TCX) 4'
    }
}

Describe 'TCX attachments on a remote node' -Skip:(-not ($kernel -and $bpftool75)) {
    BeforeAll {
        # The node runs bpftool 7.5, as calico-node does from v3.30.
        $cluster = Start-TcxNode tcx75 v3.30.7
        $nodeNs = "cbk-$($cluster.RunId)-node-a"
        $root = "/tmp/cbk-$($cluster.RunId)-node-a/bpffs"
    }
    AfterAll { Stop-TcxNode $cluster }

    It 'Get-BpfInterface -Node equals the local read field for field' {
        $remote = @(Get-BpfInterface -Node node-a | ForEach-Object { $_ | ConvertTo-Json -Depth 4 -EnumsAsStrings -Compress })
        $env:NODENAME = 'node-a'
        try { $local = @(Invoke-InNetns $nodeNs "Get-BpfInterface -PinPath '$root/tc/globals' | ForEach-Object { `$_ | ConvertTo-Json -Depth 4 -EnumsAsStrings -Compress }") }
        finally { Remove-Item Env:NODENAME }
        $remote | Should -Be $local
        $w = (Get-BpfInterface -Node node-a eth0)
        $w.AttachKind | Should -Be 'TCX'
        $w.Attachments.ProgramId | Should -Be @(Get-TcxEntries $nodeNs eth0).prog_id
    }

    It 'the drops check on the node says the TCX interface has no clsact qdisc' {
        $r = Test-CalicoEbpf -Node node-a -Check drops
        $r.Evidence | Should -Match ([regex]::Escape('no clsact qdisc on 1 interface with Calico programs attached with TCX or netkit (bpfAttachType), where tc -s qdisc counts no drops; their drops from the counters map: eth0 (TCX) 415'))
    }
}

Describe 'A node whose bpftool predates TCX and netkit' -Skip:(-not $kernel) {
    BeforeAll {
        # calico-node v3.25 to v3.28.0 ship bpftool 5.3.
        $cluster = Start-TcxNode tcxold v3.26.5
    }
    AfterAll { Stop-TcxNode $cluster }

    It 'says it cannot see them, and that Felix has pinned TCX links there' {
        $w = Get-BpfInterface -Node node-a eth0 -WarningVariable warned -WarningAction SilentlyContinue
        $w.AttachKind | Should -Be 'None'
        "$warned" | Should -Match 'older than 7\.3 \(the first to list TCX and netkit attachments\): only TC \(clsact\) attachments are listed'
        "$warned" | Should -Match ([regex]::Escape('Felix has pinned 2 TCX or netkit links there (/sys/fs/bpf/tcx/eth0_egress, /sys/fs/bpf/tcx/eth0_ingress)'))
        (Test-CalicoEbpf -Node node-a -Check drops).Evidence | Should -Match 'older than 7\.3'
    }
}
