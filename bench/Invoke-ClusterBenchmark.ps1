#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Cluster-mode benchmarks on the test cluster: one node's full conntrack table through the
    Kubernetes API against kubectl's raw transfer, and a 50-node fleet against one node.
.DESCRIPTION
    One node: a simulated node whose cali_v4_ct4 holds 512,000 entries; (Get-BpfConntrack -Node big |
    Measure-Object).Count against kubectl exec ... -- bpftool map dump pinned ... > /dev/null (the
    command the issue names) and against bpftool's faster JSON form (-j), in the same run, with the
    pwsh process's memory growth. Fleet: 50 simulated nodes; Get-BpfCounter -Node * -ThrottleLimit 16
    against Get-BpfCounter -Node (one node), twice: as the nodes are (every node's commands on this
    machine's cores, no latency), and with every exec starting -ExecLatencyMilliseconds late (the test
    cluster's execDelayMilliseconds knob), as exec through an API server and a kubelet does.
    Needs root and kubectl.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [int] $Entries = 512000,
    [int] $FleetSize = 50,
    [int] $ExecLatencyMilliseconds = 200
)

$ErrorActionPreference = 'Stop'
$root = Split-Path $PSScriptRoot
$work = Join-Path $root 'out/bench'
$null = New-Item -ItemType Directory -Force $work
Import-Module (Join-Path $root 'tests/Pester/TestSupport.psm1') -Force
& dotnet build (Join-Path $root 'tests/CalicoBpf.TestCluster/CalicoBpf.TestCluster.csproj') -c Release --nologo -v q -clp:ErrorsOnly
if ($LASTEXITCODE) { throw 'Building the test cluster failed.' }
$env:CALICOBPF_TESTCLUSTER = Join-Path $root 'tests/CalicoBpf.TestCluster/bin/Release/net8.0/CalicoBpf.TestCluster.dll'
$helper = Join-Path $PSScriptRoot 'CalicoBpf.Bench/bin/Release/net8.0/CalicoBpf.Bench'
if (-not (Get-Command kubectl -ErrorAction SilentlyContinue)) { throw 'kubectl is needed for the reference transfer.' }

function Median([double[]] $v) { $s = $v | Sort-Object; $s[[int][math]::Floor(($s.Count - 1) / 2)] }
$pwsh = Join-Path $PSHOME 'pwsh'

# ---- one node, a full conntrack table ----
$dir = Join-Path $work 'cluster-one'
$null = New-Item -ItemType Directory -Force $dir
$scenario = Join-Path $dir 'one.yaml'
@"
install: manifest
nodes:
  - name: big
    address: 172.18.0.50
    interfaces: [eth0]
    dataplane:
      conntrack: { tcp: 1 }
"@ | Set-Content $scenario
$cluster = Start-TestCluster -Scenario $scenario -Directory $dir
try {
    $pins = "/tmp/cbk-$($cluster.RunId)-big/bpffs/tc/globals"
    $count = [long]((& $helper fill $pins $Entries) -split ' ')[0]
    $script = @"
Import-Module '$ModulePath'
function Mem { `$s = Get-Content /proc/self/status; @{ Rss = [long]((`$s -match '^VmRSS')[0] -replace '\D',''); Hwm = [long]((`$s -match '^VmHWM')[0] -replace '\D','') } }
`$null = Get-BpfMap -Node big -NoCount -Kubeconfig '$($cluster.Kubeconfig)'
[GC]::Collect(); `$before = Mem
`$t = foreach (`$i in 1..3) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = (Get-BpfConntrack -Node big -Kubeconfig '$($cluster.Kubeconfig)' | Measure-Object).Count; if (`$n -ne $count) { throw "counted `$n" }; `$sw.Elapsed.TotalMilliseconds; if (`$i -eq 1) { `$first = Mem } }
"`$(`$t -join ',') `$(`$before.Rss) `$(`$first.Hwm)"
"@
    $parts = (& $pwsh -NoProfile -NonInteractive -Command $script | Select-Object -Last 1) -split ' '
    $cmdlet = Median ([double[]]($parts[0] -split ','))
    $growth = ([long]$parts[2] - [long]$parts[1]) / 1024
    $env:KUBECONFIG = $cluster.Kubeconfig
    $pod = (kubectl get pods -A -o json | ConvertFrom-Json).items[0]
    function Measure-Kubectl([string] $Flags) {
        Median (1..3 | ForEach-Object {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            & sh -c "kubectl exec -n $($pod.metadata.namespace) $($pod.metadata.name) -c calico-node -- bpftool $Flags map dump pinned /sys/fs/bpf/tc/globals/cali_v4_ct4 > /dev/null"
            if ($LASTEXITCODE) { throw 'kubectl exec failed.' }
            $sw.Elapsed.TotalMilliseconds
        })
    }
    $kubectlText = Measure-Kubectl ''
    $kubectlJson = Measure-Kubectl '-j'
    Remove-Item Env:KUBECONFIG
} finally { Stop-TestCluster $cluster }

# ---- a fleet, as the nodes are and with exec latency ----
function Measure-Fleet([int] $Delay) {
    $dir = Join-Path $work "cluster-fleet-$Delay"
    $null = New-Item -ItemType Directory -Force $dir
    $scenario = Join-Path $dir 'fleet.yaml'
    $nodes = foreach ($i in 1..$FleetSize) {
@"
  - name: n$('{0:d2}' -f $i)
    address: 172.18.1.$i
    interfaces: [eth0]
    execDelayMilliseconds: $Delay
    dataplane:
      conntrackMaxEntries: 1024
      conntrack: { tcp: 20 }
      interfaces:
        - name: eth0
          ingress: { TotalPackets: $(1000 * $i), DroppedByPolicy: $i }
"@
    }
    "install: operator`nnodes:`n" + ($nodes -join "`n") | Set-Content $scenario
    $cluster = Start-TestCluster -Scenario $scenario -Directory $dir
    try {
        $script = @"
Import-Module '$ModulePath'
`$k = '$($cluster.Kubeconfig)'
`$null = Get-BpfCounter -Node n01 -Kubeconfig `$k
`$one = foreach (`$i in 1..3) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$null = Get-BpfCounter -Node n01 -Kubeconfig `$k; `$sw.Elapsed.TotalMilliseconds }
`$all = foreach (`$i in 1..3) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = @(Get-BpfCounter -Node * -ThrottleLimit 16 -Kubeconfig `$k).Count; if (`$n -ne 26 * $FleetSize) { throw "rows `$n" }; `$sw.Elapsed.TotalMilliseconds }
"`$((`$one | Sort-Object)[1]) `$((`$all | Sort-Object)[1])"
"@
        $parts = (& $pwsh -NoProfile -NonInteractive -Command $script | Select-Object -Last 1) -split ' '
        [pscustomobject]@{ One = [double]$parts[0]; Fleet = [double]$parts[1] }
    } finally { Stop-TestCluster $cluster }
}

$raw = Measure-Fleet 0
$latent = Measure-Fleet $ExecLatencyMilliseconds

function Ratio([double] $a, [double] $b) { [math]::Round($a / $b, 2) }
$report = @"

Cluster mode (the test cluster on this machine: API server and nodes on loopback):

| measurement | time | reference | ratio | goal |
|---|---|---|---|---|
| (Get-BpfConntrack -Node big \| Measure-Object).Count, $count entries | $([math]::Round($cmdlet)) ms | kubectl exec ... bpftool map dump > /dev/null (the issue's command): $([math]::Round($kubectlText)) ms | $(Ratio $cmdlet $kubectlText) | no slower than kubectl's raw transfer |
| the same | | kubectl exec ... bpftool -j map dump > /dev/null (bpftool's faster JSON form): $([math]::Round($kubectlJson)) ms | $(Ratio $cmdlet $kubectlJson) | |
| pwsh memory growth during that remote dump | $([math]::Round($growth, 1)) MB | | | bounded |
| Get-BpfCounter -Node * -ThrottleLimit 16, $FleetSize nodes, no exec latency | $([math]::Round($raw.Fleet)) ms | one node: $([math]::Round($raw.One)) ms | $(Ratio $raw.Fleet $raw.One) | under 4 |
| the same, every exec $ExecLatencyMilliseconds ms late | $([math]::Round($latent.Fleet)) ms | one node: $([math]::Round($latent.One)) ms | $(Ratio $latent.Fleet $latent.One) | under 4 |
"@
Add-Content -Path (Join-Path $work 'results.md') -Value $report
Write-Host $report
