#!/usr/bin/env pwsh
<#
.SYNOPSIS
    What Tab costs on -Node and -Interface against the demo cluster: the first completion of a line
    (it reads the cluster or the node) and the next ones (served from the 30 s cache), in one process
    after a warm-up. References in the same run: a completion that reads nothing (Set-FelixBpfConfig
    -BpfLogLevel, static words) and the cmdlet read the completion stands for (Get-CalicoNode;
    Get-BpfInterface -Node), each first read made on a fresh copy of the kubeconfig so that neither
    side reuses a connection. Goals: cached within 2x the static completion; the first within 1.5x of
    the read plus the static completion.
#>
[CmdletBinding()]
param([Parameter(Mandatory)] [string] $ModulePath, [string] $TestCluster, [int] $Runs = 5)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../tests/Pester/TestSupport.psm1') -Force
Import-Module (Join-Path $PSScriptRoot 'BenchGoals.psm1') -Force
if ($TestCluster) { $env:CALICOBPF_TESTCLUSTER = $TestCluster }
$work = Join-Path ([IO.Path]::GetTempPath()) "calicobpf-bench-completion-$PID"
$null = New-Item -ItemType Directory -Force $work
$cluster = Start-TestCluster -Scenario (Join-Path $PSScriptRoot '../demo/cluster.yaml') -Directory $work
try {
    Import-Module $ModulePath
    $kc = $cluster.Kubeconfig
    function Time([scriptblock] $Block) { $sw = [Diagnostics.Stopwatch]::StartNew(); $null = & $Block; $sw.Elapsed.TotalMilliseconds }
    function Median([double[]] $x) { ($x | Sort-Object)[[int][math]::Floor(($x.Count - 1) / 2)] }
    function Complete([string] $Line) { (TabExpansion2 -inputScript $Line -cursorColumn $Line.Length).CompletionMatches }

    # Warm-up: the cluster client, exec, the decoders and TabExpansion2 itself, on other lines.
    $null = Get-CalicoNode -Kubeconfig $kc; $null = Get-BpfInterface -Kubeconfig $kc -Node node-b
    $null = Complete "Get-BpfMap -Kubeconfig $kc -Node node-b "
    $static = Median @(foreach ($i in 1..$Runs) { Time { Complete 'Set-FelixBpfConfig -BpfLogLevel ' } })

    $rows = foreach ($case in @(
            @{ Name = '-Node (the cluster''s nodes)'; Line = "Get-BpfConntrack -Kubeconfig $kc -Node "; Read = { Get-CalicoNode -Kubeconfig $kc }; Expect = 'node-a' }
            @{ Name = '-Interface (a node''s interfaces, one exec)'; Line = "Get-BpfCounter -Kubeconfig $kc -Node node-a -Interface "; Read = { Get-BpfInterface -Kubeconfig $kc -Node node-a }; Expect = 'eth0' })) {
        # The first completion of a line reads; a fresh kubeconfig file per run keeps it uncached (and
        # its connection new), and the reference read gets a fresh copy too.
        $first = foreach ($i in 1..$Runs) {
            $copy = Join-Path $work "kc-first-$($case.Expect)-$i"; Copy-Item $kc $copy
            $line = $case.Line.Replace($kc, $copy)
            Time { if ((Complete $line).CompletionText -notcontains $case.Expect) { throw "$($case.Name): $($case.Expect) was not offered." } }
        }
        $read = foreach ($i in 1..$Runs) {
            $copy = Join-Path $work "kc-read-$($case.Expect)-$i"; Copy-Item $kc $copy
            $block = [scriptblock]::Create($case.Read.ToString().Replace('$kc', "'$copy'"))
            Time $block
        }
        $null = Complete $case.Line
        $cached = foreach ($i in 1..$Runs) { Time { Complete $case.Line } }
        [pscustomobject]@{ Name = $case.Name; First = (Median $first); Cached = (Median $cached); Read = (Median $read) }
    }
}
finally {
    Stop-TestCluster $cluster
    Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue
}

foreach ($row in $rows) {
    $f = [math]::Round($row.First / ($row.Read + $static), 2); $c = [math]::Round($row.Cached / $static, 2)
    $null = New-BenchGoal 'Tab completion (Measure-Completion)' "$($row.Name): the first within 1.5x the read plus a static completion" $f ($f -le 1.5)
    $null = New-BenchGoal 'Tab completion (Measure-Completion)' "$($row.Name): cached within 2x a static completion" $c ($c -le 2)
}
$report = "`nTab completion against the demo cluster, $(Get-BenchMachine) (medians of $Runs, one process after a warm-up; a static completion, Set-FelixBpfConfig -BpfLogLevel, took $([math]::Round($static, 2)) ms):`n`n" +
    "| completion | first (reads) | cached | the cmdlet read | first / (read + static) | cached / static | goals met |`n|---|---|---|---|---|---|---|`n" +
    (($rows | ForEach-Object {
        $f = $_.First / ($_.Read + $static); $c = $_.Cached / $static
        "| $($_.Name) | $([math]::Round($_.First, 1)) ms | $([math]::Round($_.Cached, 2)) ms | $([math]::Round($_.Read, 1)) ms | $([math]::Round($f, 2)) | $([math]::Round($c, 2)) | $(if ($f -le 1.5 -and $c -le 2) { 'yes' } else { 'no' }) |"
    }) -join "`n") + "`n"
$out = Join-Path (Split-Path $PSScriptRoot) 'out/bench'
$null = New-Item -ItemType Directory -Force $out
Add-Content -Path (Join-Path $out 'results.md') -Value $report
Write-Host $report
