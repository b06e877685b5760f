#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Issue 17's benchmarks: what sampling costs, locally and on a replayed fleet, and Watch-BpfConntrack on a full table.
.DESCRIPTION
    In one run, on this machine:
      - one sample of every counter of a node (Get-BpfCounter -SampleInterval 1 -IncludeUnchanged: the
        time from a sample's due time to its last object) against one Get-BpfCounter, on a counters map
        of -Interfaces interfaces (every hook, every counter), with the pwsh process's memory from the
        second sample to the last, and PowerShell's floor under a sample (its objects, made beforehand,
        through the same consumer);
      - Get-BpfCounter -Node * -SampleInterval 1 on -FleetSize replayed nodes (the fleet benchmark's
        recording, every exec -ExecLatencyMilliseconds late): samples skipped (the client did not keep
        up), the time each sample took, and memory from the fifth sample to the last;
      - Watch-BpfConntrack's sampler on a full cali_v4_ct4 (-Entries): the time of a sample against one
        full decoded read, in one process, and the managed heap it keeps; and Watch-BpfConntrack in a
        fresh pwsh with its memory growth.
    Writes out/bench/sampling.md; copy it into docs/performance.md. Needs root.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [string] $TestClusterPath,
    [int] $Entries = 512000,
    [int] $Interfaces = 250,
    [int] $FleetSize = 50,
    [int] $Samples = 20,
    [int] $ExecLatencyMilliseconds = 20
)

$ErrorActionPreference = 'Stop'
if (-not $IsLinux -or (id -u) -ne '0') { throw 'The benchmark creates real BPF maps: run it as root on Linux.' }
$ModulePath = (Resolve-Path -LiteralPath $ModulePath).Path
$root = Split-Path $PSScriptRoot
. (Join-Path $root 'build/Common.ps1')
Import-Module (Join-Path $root 'tests/Pester/TestSupport.psm1') -Force
Import-Module (Join-Path $PSScriptRoot 'BenchGoals.psm1') -Force
if ($TestClusterPath) { $env:CALICOBPF_TESTCLUSTER = $TestClusterPath }
$work = Join-Path $root 'out/bench'
$null = New-Item -ItemType Directory -Force $work
$pwsh = Join-Path $PSHOME 'pwsh'
& dotnet build (Join-Path $PSScriptRoot 'CalicoBpf.Bench/CalicoBpf.Bench.csproj') -c Release --nologo -v q -clp:ErrorsOnly
if ($LASTEXITCODE) { throw 'Building bench/CalicoBpf.Bench failed.' }
$helper = Join-Path (Get-BuildOutput (Join-Path $PSScriptRoot 'CalicoBpf.Bench')) 'CalicoBpf.Bench'
function Median([double[]] $Values) { $s = @($Values | Sort-Object); if ($s.Count -eq 0) { return 0 }; $s[[int][math]::Floor(($s.Count - 1) / 2)] }

# The client's side of a sampling run, in a fresh pwsh: per sample, the time from its due time to its
# last object; the samples the warnings say were skipped; VmRSS after sample $From and after the last;
# beside it, the GC's committed heap at the same two points and the gen2 collections between them (what
# VmRSS alone cannot tell apart: the managed heap swinging with the GC's timing, or native growth).
$sampler = @'
function Rss { [long]((Get-Content /proc/self/status | Where-Object { $_ -like 'VmRSS*' }) -replace '\D', '') }
function Run([scriptblock] $Command, [int] $From) {
    $last = @{}; $rss = @{}
    & $Command -WarningVariable +skipped -WarningAction SilentlyContinue | ForEach-Object {
        $last[$_.Sample] = ([DateTime]::UtcNow - $_.Timestamp).TotalMilliseconds
        if ($_.Sample -eq $From -and -not $rss.From) { $rss.From = Rss; $rss.HeapFrom = [GC]::GetGCMemoryInfo().TotalCommittedBytes; $rss.Gen2From = [GC]::CollectionCount(2); $rss.Sample = $_.Sample }
    }
    $rss.To = Rss
    $heapTo = [GC]::GetGCMemoryInfo().TotalCommittedBytes
    $gen2 = ([GC]::CollectionCount(2) - $rss.Gen2From) / [math]::Max(1, ($last.Keys | Measure-Object -Maximum).Maximum - $rss.Sample)
    $late = @($last.Values | Sort-Object)
    $behind = @($skipped | Where-Object { "$_" -like 'Sample * is late:*' })
    foreach ($other in @($skipped | Where-Object { "$_" -notlike 'Sample * is late:*' } | Select-Object -Unique)) { [Console]::Error.WriteLine("warning: $other") }
    "{0} {1} {2} {3} {4} {5} {6}" -f $late[[int][math]::Floor(($late.Count - 1) / 2)], $late[-1], $behind.Count, $rss.From, $rss.To, [math]::Round(($heapTo - $rss.HeapFrom) / 1MB, 1), [math]::Round($gen2, 2)
}
'@

$bpffs = Join-Path ([IO.Path]::GetTempPath()) ('calicobpf-bench-sampling-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
$null = New-Item -ItemType Directory $bpffs
& mount -t bpf bpf $bpffs
if ($LASTEXITCODE) { throw "mount -t bpf $bpffs failed." }
$pins = Join-Path $bpffs 'tc/globals'
$null = New-Item -ItemType Directory -Force $pins
$r = [ordered]@{}
try {
    $counterEntries = [long](& $helper fill-counters $pins $Interfaces)
    $filled = (& $helper fill $pins $Entries) -split ' '
    if ([long]$filled[0] -ne $Entries) { throw "The conntrack map holds $($filled[0]) entries, not $Entries." }

    # ---- one node: a sample against one read ----
    $script = $sampler + @"
Import-Module '$ModulePath'
`$null = Get-BpfCounter -PinPath '$pins'
`$once = foreach (`$i in 1..5) { `$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = (Get-BpfCounter -PinPath '$pins' | Measure-Object).Count; `$sw.Elapsed.TotalMilliseconds }
"once `$((`$once | Sort-Object)[2]) `$n"
"samples `$(Run { Get-BpfCounter -PinPath '$pins' -SampleInterval 1 -MaxSamples $([math]::Min($Samples, 10)) -IncludeUnchanged } 2)"
# PowerShell's floor under a sample: one sample's objects, made beforehand, through the same ForEach-Object body.
`$kept = @(Get-BpfCounter -PinPath '$pins' -SampleInterval 1 -MaxSamples 1 -IncludeUnchanged)
`$floor = foreach (`$i in 1..5) { `$last = @{}; `$sw = [Diagnostics.Stopwatch]::StartNew(); `$kept | ForEach-Object { `$last[`$_.Sample] = ([DateTime]::UtcNow - `$_.Timestamp).TotalMilliseconds }; `$sw.Elapsed.TotalMilliseconds }
"floor `$((`$floor | Sort-Object)[2]) `$(`$kept.Count)"
"@
    $rows = & $pwsh -NoProfile -NonInteractive -Command $script
    if ($LASTEXITCODE) { throw 'The local sampling run failed (above).' }
    $once = ($rows | Where-Object { $_ -like 'once *' }) -split ' '
    $s = ($rows | Where-Object { $_ -like 'samples *' }) -split ' '
    $floor = ($rows | Where-Object { $_ -like 'floor *' }) -split ' '
    $r.FloorMs = [double]$floor[1]
    $r.SampleObjects = [long]$floor[2]
    $r.CounterRows = [long]$once[2]
    $r.OnceMs = [double]$once[1]
    $r.SampleMs = [double]$s[1]
    $r.SampleMaxMs = [double]$s[2]
    $r.LocalSkipped = [int]$s[3]
    $r.LocalGrowthMb = [math]::Round(([long]$s[5] - [long]$s[4]) / 1024, 1)
    $r.LocalHeapMb = [double]$s[6]
    $r.LocalGen2 = [double]$s[7]

    # ---- Watch-BpfConntrack on the full table ----
    $watch = & $helper watch $pins 3
    $r.ReadMs = [double](($watch | Where-Object { $_ -like 'read *' }) -split ' ')[1]
    $base = ($watch | Where-Object { $_ -like 'baseline *' }) -split ' '
    $r.WatchBaselineMs = [double]$base[1]
    $r.WatchKeptMb = [double]$base[2]
    $samplesW = @($watch | Where-Object { $_ -like 'sample *' } | ForEach-Object { ,($_ -split ' ') })
    $r.WatchSampleMs = Median ($samplesW | ForEach-Object { [double]$_[1] })
    $r.WatchKeptLastMb = [double]$samplesW[-1][2]
    $script = @"
Import-Module '$ModulePath'
function Mem { `$s = Get-Content /proc/self/status; @{ Rss = [long]((`$s -match '^VmRSS')[0] -replace '\D',''); Hwm = [long]((`$s -match '^VmHWM')[0] -replace '\D','') } }
`$null = Get-BpfCounter -PinPath '$pins'
`$before = Mem
`$n = @(Watch-BpfConntrack -PinPath '$pins' -SampleInterval 5 -MaxSamples 3 -WarningAction SilentlyContinue).Count
"`$n `$(`$before.Rss) `$((Mem).Hwm)"
"@
    $w = (& $pwsh -NoProfile -NonInteractive -Command $script | Select-Object -Last 1) -split ' '
    $r.WatchGrowthMb = [math]::Round(([long]$w[2] - [long]$w[1]) / 1024, 1)
} finally {
    & umount $bpffs
    Remove-Item -Recurse -Force $bpffs -ErrorAction SilentlyContinue
}

# ---- a replayed fleet: one real node recorded, then $FleetSize nodes answering from the recording ----
$replayDir = Join-Path $work 'sampling-replay'
$null = New-Item -ItemType Directory -Force $replayDir
$recording = Join-Path $replayDir 'fleet.jsonl'
Remove-Item $recording -ErrorAction SilentlyContinue
@"
install: operator
nodes:
  - name: recorded
    address: 172.18.2.1
    interfaces: [eth0, cali5a3e1d0c0f1]
    record: $recording
    dataplane:
      conntrack: { tcp: 20 }
      interfaces:
        - name: eth0
          ingress: { TotalPackets: 1000, DroppedByPolicy: 1 }
        - name: cali5a3e1d0c0f1
          ingress: { TotalPackets: 500, AcceptedByPolicy: 500 }
          egress: { TotalPackets: 400, AcceptedByPolicy: 400 }
"@ | Set-Content (Join-Path $replayDir 'record.yaml')
$cluster = Start-TestCluster -Scenario (Join-Path $replayDir 'record.yaml') -Directory (Join-Path $replayDir 'record')
try {
    $perNode = [int](& $pwsh -NoProfile -NonInteractive -Command "Import-Module '$ModulePath'; @(Get-BpfCounter -Node recorded -Kubeconfig '$($cluster.Kubeconfig)').Count" | Select-Object -Last 1)
} finally { Stop-TestCluster $cluster }
$dir = Join-Path $replayDir "fleet-$FleetSize"
$null = New-Item -ItemType Directory -Force $dir
"install: operator`nreplayedNodes: { count: $FleetSize, namePrefix: r, recording: $recording, execDelayMilliseconds: $ExecLatencyMilliseconds }" | Set-Content (Join-Path $dir 'fleet.yaml')
$cluster = Start-TestCluster -Scenario (Join-Path $dir 'fleet.yaml') -Directory $dir
try {
    $script = $sampler + @"
Import-Module '$ModulePath'
`$k = '$($cluster.Kubeconfig)'
`$null = Get-BpfCounter -Node r001 -Kubeconfig `$k
`$sw = [Diagnostics.Stopwatch]::StartNew(); `$n = (Get-BpfCounter -Node * -Kubeconfig `$k | Measure-Object).Count; "once `$(`$sw.Elapsed.TotalMilliseconds) `$n"
"samples `$(Run { Get-BpfCounter -Node * -Kubeconfig `$k -SampleInterval 1 -MaxSamples $Samples -IncludeUnchanged } 5)"
"@
    $rows = & $pwsh -NoProfile -NonInteractive -Command $script
    if ($LASTEXITCODE) { throw 'The fleet sampling run failed (above).' }
    $once = ($rows | Where-Object { $_ -like 'once *' }) -split ' '
    $s = ($rows | Where-Object { $_ -like 'samples *' }) -split ' '
    if ([long]$once[2] -ne $perNode * $FleetSize) { throw "The fleet gave $($once[2]) counters, not $($perNode * $FleetSize)." }
    $r.FleetOnceMs = [double]$once[1]
    $r.FleetSampleMs = [double]$s[1]
    $r.FleetSampleMaxMs = [double]$s[2]
    $r.FleetSkipped = [int]$s[3]
    $r.FleetGrowthMb = [math]::Round(([long]$s[5] - [long]$s[4]) / 1024, 1)
    $r.FleetHeapMb = [double]$s[6]
    $r.FleetGen2 = [double]$s[7]
} finally { Stop-TestCluster $cluster }

$sampleVsOnce = [math]::Round($r.SampleMs / $r.OnceMs, 2)
$watchVsRead = [math]::Round($r.WatchSampleMs / $r.ReadMs, 2)
$b = 'counters over time (Measure-Sampling)'
$goals = @(
    New-BenchGoal $b "a sample costs no more than 2x one read (PowerShell's floor under it, its objects through the consumer: $([math]::Round($r.FloorMs / $r.OnceMs, 2)) reads)" $sampleVsOnce ($sampleVsOnce -le 2)
    New-BenchGoal $b "1 s on $FleetSize nodes: the client keeps up (no sample skipped, each under 1 s)" "$($r.FleetSkipped) skipped, slowest $([math]::Round($r.FleetSampleMaxMs)) ms" ($r.FleetSkipped -eq 0 -and $r.FleetSampleMaxMs -lt 1000)
    New-BenchGoal $b "memory flat while sampling, under 20 MB (pwsh VmRSS, sample 5 to $Samples on the fleet; 2 to the last locally)" "fleet $($r.FleetGrowthMb) MB, local $($r.LocalGrowthMb) MB (GC committed heap: fleet $($r.FleetHeapMb) MB, $($r.FleetGen2) gen2 a sample; local $($r.LocalHeapMb) MB, $($r.LocalGen2))" ($r.FleetGrowthMb -lt 20 -and $r.LocalGrowthMb -lt 20)
    New-BenchGoal $b 'Watch-BpfConntrack: a sample within 2x a full read' $watchVsRead ($watchVsRead -le 2)
    New-BenchGoal $b 'Watch-BpfConntrack: memory bounded by the table, flat between samples (managed heap kept: after the baseline, after the last sample, within 5 MB; pwsh growth over 3 samples)' "$($r.WatchKeptMb) MB, $($r.WatchKeptLastMb) MB; pwsh $($r.WatchGrowthMb) MB" ([math]::Abs($r.WatchKeptLastMb - $r.WatchKeptMb) -le 5)
)
$report = @"
Counters over time, $(Get-BenchMachine)

| measurement | time | reference | ratio |
|---|---|---|---|
| one sample of every counter, $Interfaces interfaces x 3 hooks ($($r.SampleObjects) objects; due time to last object, median) | $([math]::Round($r.SampleMs)) ms | one Get-BpfCounter ($($r.CounterRows) rows, into Measure-Object): $([math]::Round($r.OnceMs)) ms | $sampleVsOnce |
| PowerShell's floor under that sample: its $($r.SampleObjects) objects, made beforehand, through the same ForEach-Object (median of 5) | $([math]::Round($r.FloorMs)) ms | | $([math]::Round($r.FloorMs / $r.OnceMs, 2)) |
| Get-BpfCounter -Node * -SampleInterval 1, $FleetSize replayed nodes, exec $ExecLatencyMilliseconds ms late ($Samples samples; median, slowest) | $([math]::Round($r.FleetSampleMs)) ms, $([math]::Round($r.FleetSampleMaxMs)) ms | one Get-BpfCounter -Node *: $([math]::Round($r.FleetOnceMs)) ms | $([math]::Round($r.FleetSampleMs / $r.FleetOnceMs, 2)) |
| Watch-BpfConntrack's sampler, $Entries entries, nothing changed (median of 3) | $([math]::Round($r.WatchSampleMs)) ms | one full decoded read (ConntrackReader.Read): $([math]::Round($r.ReadMs)) ms | $watchVsRead |
| its baseline (every entry kept as raw bytes) | $([math]::Round($r.WatchBaselineMs)) ms | | |

$(Format-BenchGoalTable $goals)
"@
Set-Content -Path (Join-Path $work 'sampling.md') -Value $report
Write-Host ''
Write-Host $report
Write-Host "Written to $(Join-Path $work 'sampling.md'); copy it into docs/performance.md."
