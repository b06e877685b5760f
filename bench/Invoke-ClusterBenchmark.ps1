#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Cluster-mode benchmarks on the test cluster: one node's full conntrack table through the
    Kubernetes API against kubectl's raw transfer, a 50-node fleet against one node, and replayed
    fleets of 50 and 500 nodes against one.
.DESCRIPTION
    One node: a simulated node whose cali_v4_ct4 holds 512,000 entries; (Get-BpfConntrack -Node big |
    Measure-Object).Count against kubectl exec ... -- bpftool map dump pinned ... > /dev/null (the
    command the issue names) and against bpftool's faster JSON form (-j), in the same run, with the
    pwsh process's memory growth. Fleet: 50 simulated nodes; Get-BpfCounter -Node * -ThrottleLimit 16
    against Get-BpfCounter -Node (one node), twice: as the nodes are (every node's commands on this
    machine's cores, no latency), and with every exec starting -ExecLatencyMilliseconds late (the test
    cluster's execDelayMilliseconds knob), as exec through an API server and a kubelet does.
    Replayed fleets: 1, 50 and 500 nodes that answer exec from a recording of one simulated node
    (the test cluster's replayedNodes), every exec -ExecLatencyMilliseconds late and nothing run for
    them; Get-BpfCounter -Node * -ThrottleLimit 16 and Get-BpfConntrack -Node * on each, against the
    one-node fleet, with the pwsh client's memory growth: the module's fan-out, not this machine's cores.
    Needs root and kubectl.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [int] $Entries = 512000,
    [int] $FleetSize = 50,
    [int] $ExecLatencyMilliseconds = 200,
    # Only the one-node dump (its table and floors), for working on it.
    [switch] $OneNodeOnly
)

$ErrorActionPreference = 'Stop'
$root = Split-Path $PSScriptRoot
. (Join-Path $root 'build/Common.ps1')
$work = Join-Path $root 'out/bench'
$null = New-Item -ItemType Directory -Force $work
Import-Module (Join-Path $root 'tests/Pester/TestSupport.psm1') -Force
Import-Module (Join-Path $PSScriptRoot 'BenchGoals.psm1') -Force
& dotnet build (Join-Path $root 'tests/CalicoBpf.TestCluster/CalicoBpf.TestCluster.csproj') -c Release --nologo -v q -clp:ErrorsOnly
if ($LASTEXITCODE) { throw 'Building the test cluster failed.' }
$env:CALICOBPF_TESTCLUSTER = Join-Path (Get-BuildOutput (Join-Path $root 'tests/CalicoBpf.TestCluster')) 'CalicoBpf.TestCluster.dll'
$helper = Join-Path (Get-BuildOutput (Join-Path $PSScriptRoot 'CalicoBpf.Bench')) 'CalicoBpf.Bench'
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
`$f = foreach (`$i in 1..3) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = (Get-BpfConntrack -Node big -Address 10.65.1.2 -Kubeconfig '$($cluster.Kubeconfig)' | Measure-Object).Count; if (`$n -ne 1) { throw "filtered `$n" }; `$sw.Elapsed.TotalMilliseconds }
"`$(`$t -join ',') `$(`$before.Rss) `$(`$first.Hwm) `$(`$f -join ',')"
"@
    $parts = (& $pwsh -NoProfile -NonInteractive -Command $script | Select-Object -Last 1) -split ' '
    $cmdlet = Median ([double[]]($parts[0] -split ','))
    $growth = ([long]$parts[2] - [long]$parts[1]) / 1024
    $filtered = Median ([double[]]($parts[3] -split ','))
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
    # The floors: the node's bpftool printing the table as JSON with nothing sent (both sides pay it);
    # the same gzip'd on the node as the module's exec does; and that gzip'd stream sent to kubectl.
    function Measure-Node([string] $NodeCommand, [string] $Redirect = '') {
        Median (1..3 | ForEach-Object {
            $sw = [Diagnostics.Stopwatch]::StartNew()
            & sh -c "kubectl exec -n $($pod.metadata.namespace) $($pod.metadata.name) -c calico-node -- sh -c '$NodeCommand' $Redirect"
            if ($LASTEXITCODE) { throw 'kubectl exec failed.' }
            $sw.Elapsed.TotalMilliseconds
        })
    }
    $dumpCommand = 'bpftool -j map dump pinned /sys/fs/bpf/tc/globals/cali_v4_ct4'
    $nodeBpftool = Measure-Node "$dumpCommand > /dev/null"
    $nodeGzip = Measure-Node "$dumpCommand | gzip -1 > /dev/null"
    $sentGzip = Measure-Node "$dumpCommand | gzip -1" '> /dev/null'
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
`$perNode = @(Get-BpfCounter -Node n01 -Kubeconfig `$k).Count
`$one = foreach (`$i in 1..3) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$null = Get-BpfCounter -Node n01 -Kubeconfig `$k; `$sw.Elapsed.TotalMilliseconds }
`$all = foreach (`$i in 1..3) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = @(Get-BpfCounter -Node * -ThrottleLimit 16 -Kubeconfig `$k).Count; if (`$n -ne `$perNode * $FleetSize) { throw "rows `$n" }; `$sw.Elapsed.TotalMilliseconds }
"`$((`$one | Sort-Object)[1]) `$((`$all | Sort-Object)[1])"
"@
        $parts = (& $pwsh -NoProfile -NonInteractive -Command $script | Select-Object -Last 1) -split ' '
        if ($LASTEXITCODE) { throw "Reading the $FleetSize-node fleet failed (above)." }
        [pscustomobject]@{ One = [double]$parts[0]; Fleet = [double]$parts[1] }
    } finally { Stop-TestCluster $cluster }
}

if ($OneNodeOnly) {
    Write-Host "one node: cmdlet $([math]::Round($cmdlet)) ms, -Address $([math]::Round($filtered)) ms, kubectl -j $([math]::Round($kubectlJson)) ms, text $([math]::Round($kubectlText)) ms; node bpftool $([math]::Round($nodeBpftool)) ms, with gzip $([math]::Round($nodeGzip)) ms, sent $([math]::Round($sentGzip)) ms; growth $([math]::Round($growth, 1)) MB"
    return
}

$raw = Measure-Fleet 0
$latent = Measure-Fleet $ExecLatencyMilliseconds

# ---- replayed fleets: the module's fan-out, without the nodes' work on this machine's cores ----
# One simulated node is read once by the module while the test cluster records its execs; fleets of
# 1, 50 and 500 replayed nodes then answer the same commands from that recording, every exec
# -ExecLatencyMilliseconds late, and nothing runs for them (no process, no namespace). Each fleet is
# read by a fresh pwsh: a one-node warm-up, then three runs of each cmdlet, with the memory it grew by.
$replayDir = Join-Path $work 'cluster-replay'
$null = New-Item -ItemType Directory -Force $replayDir
$recording = Join-Path $replayDir 'fleet.jsonl'
Remove-Item $recording -ErrorAction SilentlyContinue
@"
install: operator
nodes:
  - name: recorded
    address: 172.18.2.1
    interfaces: [eth0]
    record: $recording
    dataplane:
      conntrackMaxEntries: 1024
      conntrack: { tcp: 20 }
      interfaces:
        - name: eth0
          ingress: { TotalPackets: 1000, DroppedByPolicy: 1 }
"@ | Set-Content (Join-Path $replayDir 'record.yaml')
$cluster = Start-TestCluster -Scenario (Join-Path $replayDir 'record.yaml') -Directory (Join-Path $replayDir 'record')
try {
    $script = @"
Import-Module '$ModulePath'
`$k = '$($cluster.Kubeconfig)'
"`$(@(Get-BpfCounter -Node recorded -Kubeconfig `$k).Count) `$(@(Get-BpfConntrack -Node recorded -Kubeconfig `$k).Count)"
"@
    $parts = (& $pwsh -NoProfile -NonInteractive -Command $script | Select-Object -Last 1) -split ' '
    $perNode = [pscustomobject]@{ Counters = [int]$parts[0]; Conntrack = [int]$parts[1] }
    if ($perNode.Counters -lt 1 -or $perNode.Conntrack -lt 1) { throw "The recorded node gave $($perNode.Counters) counters and $($perNode.Conntrack) conntrack entries." }
} finally { Stop-TestCluster $cluster }

function Measure-ReplayedFleet([int] $Size) {
    $dir = Join-Path $replayDir "fleet-$Size"
    $null = New-Item -ItemType Directory -Force $dir
    $scenario = Join-Path $dir 'fleet.yaml'
    "install: operator`nreplayedNodes: { count: $Size, namePrefix: r, recording: $recording, execDelayMilliseconds: $ExecLatencyMilliseconds }" | Set-Content $scenario
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $cluster = Start-TestCluster -Scenario $scenario -Directory $dir
    $start = $sw.Elapsed.TotalMilliseconds
    try {
        $script = @"
Import-Module '$ModulePath'
`$k = '$($cluster.Kubeconfig)'
function Mem { `$s = Get-Content /proc/self/status; @{ Rss = [long]((`$s -match '^VmRSS')[0] -replace '\D',''); Hwm = [long]((`$s -match '^VmHWM')[0] -replace '\D','') } }
function Median(`$v) { (`$v | Sort-Object)[1] }
`$null = Get-BpfCounter -Node r001 -Kubeconfig `$k; `$null = Get-BpfConntrack -Node r001 -Kubeconfig `$k
[GC]::Collect(); `$before = Mem; `$heap = [GC]::GetTotalMemory(`$true)
`$counter = foreach (`$i in 1..3) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = (Get-BpfCounter -Node * -ThrottleLimit 16 -Kubeconfig `$k | Measure-Object).Count; if (`$n -ne $($perNode.Counters) * $Size) { throw "counters `$n" }; `$sw.Elapsed.TotalMilliseconds }
`$conntrack = foreach (`$i in 1..3) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = (Get-BpfConntrack -Node * -Kubeconfig `$k | Measure-Object).Count; if (`$n -ne $($perNode.Conntrack) * $Size) { throw "conntrack entries `$n" }; `$sw.Elapsed.TotalMilliseconds }
"`$(Median `$counter) `$(Median `$conntrack) `$(`$before.Rss) `$((Mem).Hwm) `$([GC]::GetTotalMemory(`$true) - `$heap)"
"@
        $parts = (& $pwsh -NoProfile -NonInteractive -Command $script | Select-Object -Last 1) -split ' '
        if ($LASTEXITCODE) { throw "Reading the $Size replayed nodes failed (above)." }
        [pscustomobject]@{ Size = $Size; Start = $start; Counter = [double]$parts[0]; Conntrack = [double]$parts[1]; Growth = ([long]$parts[3] - [long]$parts[2]) / 1024; Kept = [long]$parts[4] / 1MB }
    } finally { Stop-TestCluster $cluster }
}

$replayed = foreach ($size in 1, 50, 500) { Measure-ReplayedFleet $size }

function Ratio([double] $a, [double] $b) { [math]::Round($a / $b, 2) }
$b = 'cluster mode (Invoke-ClusterBenchmark)'
$clusterGoals = @(
    New-BenchGoal $b 'remote full dump no slower than kubectl exec ... bpftool map dump (cmdlet / kubectl)' (Ratio $cmdlet $kubectlText) ($cmdlet -le $kubectlText)
    New-BenchGoal $b 'remote full dump faster than kubectl exec ... bpftool -j map dump (floor-bound here: docs/performance.md, issue 19)' (Ratio $cmdlet $kubectlJson) ($cmdlet -lt $kubectlJson)
    New-BenchGoal $b 'remote filtered read (-Address, 1 entry) faster than kubectl exec ... bpftool -j map dump' (Ratio $filtered $kubectlJson) ($filtered -lt $kubectlJson)
    New-BenchGoal $b 'pwsh grows by less than 50 MB during the remote dump' "$([math]::Round($growth, 1)) MB" ($growth -lt 50)
    New-BenchGoal $b "Get-BpfCounter -Node * -ThrottleLimit 16: $FleetSize simulated nodes within 4x one node (machine-bound here: their bpftool runs on the client's cores; the replayed fleets measure the module)" (Ratio $raw.Fleet $raw.One) ($raw.Fleet -le 4 * $raw.One)
    New-BenchGoal $b "the same, every exec $ExecLatencyMilliseconds ms late" (Ratio $latent.Fleet $latent.One) ($latent.Fleet -le 4 * $latent.One)
)
$report = @"

Cluster mode, $(Get-BenchMachine) (the test cluster on this machine: API server and nodes on loopback):

| measurement | time | reference | ratio | goal |
|---|---|---|---|---|
| (Get-BpfConntrack -Node big \| Measure-Object).Count, $count entries | $([math]::Round($cmdlet)) ms | kubectl exec ... bpftool map dump > /dev/null (the issue's command): $([math]::Round($kubectlText)) ms | $(Ratio $cmdlet $kubectlText) | no slower than kubectl's raw transfer |
| the same | | kubectl exec ... bpftool -j map dump > /dev/null (bpftool's faster JSON form): $([math]::Round($kubectlJson)) ms | $(Ratio $cmdlet $kubectlJson) | faster (issue 19) |
| (Get-BpfConntrack -Node big -Address 10.65.1.2 \| Measure-Object).Count, 1 entry | $([math]::Round($filtered)) ms | kubectl exec ... bpftool -j map dump > /dev/null: $([math]::Round($kubectlJson)) ms | $(Ratio $filtered $kubectlJson) | faster (issue 19) |
| the floor: the node's bpftool -j map dump > /dev/null inside calico-node, nothing sent | $([math]::Round($nodeBpftool)) ms | | | |
| the same gzip'd on the node (bpftool -j ... \| gzip -1 > /dev/null), nothing sent | $([math]::Round($nodeGzip)) ms | | | |
| that gzip'd stream sent to kubectl > /dev/null (the module's transfer, nothing parsed) | $([math]::Round($sentGzip)) ms | | | |
| pwsh memory growth during that remote dump | $([math]::Round($growth, 1)) MB | | | under 50 MB (issue 19) |
| Get-BpfCounter -Node * -ThrottleLimit 16, $FleetSize nodes, no exec latency | $([math]::Round($raw.Fleet)) ms | one node: $([math]::Round($raw.One)) ms | $(Ratio $raw.Fleet $raw.One) | under 4 |
| the same, every exec $ExecLatencyMilliseconds ms late | $([math]::Round($latent.Fleet)) ms | one node: $([math]::Round($latent.One)) ms | $(Ratio $latent.Fleet $latent.One) | under 4 |

$(Format-BenchGoalTable $clusterGoals)
"@
$one = $replayed[0]
$b = 'replayed fleets (Invoke-ClusterBenchmark)'
# The counters goal's floor: -ThrottleLimit 16 reads 50 nodes in 4 waves, each at least one exec's latency, plus one node's own time beyond it.
$waveFloor = [math]::Round(([math]::Ceiling(50 / 16) * $ExecLatencyMilliseconds + [math]::Max(0, $one.Counter - $ExecLatencyMilliseconds)) / $one.Counter, 2)
$fleetGoals = @(
    New-BenchGoal $b "Get-BpfCounter -Node * -ThrottleLimit 16: 50 nodes within 4x one node (floor: 4 waves of the exec latency, $waveFloor here)" (Ratio $replayed[1].Counter $one.Counter) ($replayed[1].Counter -le 4 * $one.Counter)
    New-BenchGoal $b 'the same: 500 nodes within 40x' (Ratio $replayed[2].Counter $one.Counter) ($replayed[2].Counter -le 40 * $one.Counter)
    New-BenchGoal $b 'Get-BpfConntrack -Node *: 50 nodes within 4x one node' (Ratio $replayed[1].Conntrack $one.Conntrack) ($replayed[1].Conntrack -le 4 * $one.Conntrack)
    New-BenchGoal $b 'the same: 500 nodes within 40x' (Ratio $replayed[2].Conntrack $one.Conntrack) ($replayed[2].Conntrack -le 40 * $one.Conntrack)
    New-BenchGoal $b 'client memory flat: 500 nodes grow it by less than twice what 50 do (500 / 50)' (Ratio $replayed[2].Growth $replayed[1].Growth) ($replayed[2].Growth -lt 2 * $replayed[1].Growth)
    New-BenchGoal $b 'nothing kept per node: the heap kept at 500 nodes within 5 MB of that at 50' "+$([math]::Round($replayed[2].Kept - $replayed[1].Kept, 1)) MB" ($replayed[2].Kept - $replayed[1].Kept -lt 5)
)
$cpu = ((Get-Content /proc/cpuinfo | Where-Object { $_ -like 'model name*' } | Select-Object -First 1) -replace '^.*:\s*', '')
$report += @"


Replayed fleets, $(Get-Date -Format yyyy-MM-dd), $cpu, $([Environment]::ProcessorCount) cores, kernel $((uname -r)): every exec answered from a recording of one real node, $ExecLatencyMilliseconds ms late; nothing runs for the nodes. ($($perNode.Counters) counters and $($perNode.Conntrack) conntrack entries a node.)

| measurement | 1 node | 50 nodes | 500 nodes |
|---|---|---|---|
| Get-BpfCounter -Node * -ThrottleLimit 16 | $([math]::Round($one.Counter)) ms | $([math]::Round($replayed[1].Counter)) ms | $([math]::Round($replayed[2].Counter)) ms |
| Get-BpfConntrack -Node * | $([math]::Round($one.Conntrack)) ms | $([math]::Round($replayed[1].Conntrack)) ms | $([math]::Round($replayed[2].Conntrack)) ms |
| pwsh memory growth over both (VmHWM - VmRSS before) | $([math]::Round($one.Growth, 1)) MB | $([math]::Round($replayed[1].Growth, 1)) MB | $([math]::Round($replayed[2].Growth, 1)) MB |
| managed heap kept after both (after a full GC, against before) | $([math]::Round($one.Kept, 1)) MB | $([math]::Round($replayed[1].Kept, 1)) MB | $([math]::Round($replayed[2].Kept, 1)) MB |
| the test cluster's start | $([math]::Round($one.Start)) ms | $([math]::Round($replayed[1].Start)) ms | $([math]::Round($replayed[2].Start)) ms |

$(Format-BenchGoalTable $fleetGoals)
"@
Add-Content -Path (Join-Path $work 'results.md') -Value $report
Write-Host $report
