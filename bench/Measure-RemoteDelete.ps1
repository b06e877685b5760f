#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Remote bulk deletes on the test cluster: 10,000 conntrack entries removed from a node through
    exec, IPv4 and IPv6, present and (a second time) already gone.
.DESCRIPTION
    Each module under test gets nodes of its own (10,000 IPv4 and 10,000 IPv6 TCP entries each),
    all in one test cluster, measured one after another in the same run. The entries are read first;
    the timed part is `$entries | Remove-BpfConntrack`. -BaselineModulePath is an older build to
    compare with: builds before issue 13 sent the keys in the exec URL (43 KB for 500 IPv4 keys),
    so the cluster serves request lines up to 1 MB when one is given (8 KB otherwise, as a proxy).
    Goal (this build, each family): the present keys removed at least 10x faster than the same keys
    again when all are gone (the node's per-key loop), recorded through BenchGoals.psm1.
    Needs root. Part of build.ps1 bench (one round); docs/performance.md has its figures.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [string] $BaselineModulePath,
    [int] $Entries = 10000,
    [int] $Rounds = 2
)

$ErrorActionPreference = 'Stop'
$root = Split-Path $PSScriptRoot
. (Join-Path $root 'build/Common.ps1')
Import-Module (Join-Path $PSScriptRoot 'BenchGoals.psm1') -Force
$work = Join-Path $root 'out/bench/remote-delete'
$null = New-Item -ItemType Directory -Force $work
& dotnet build (Join-Path $root 'tests/CalicoBpf.TestCluster/CalicoBpf.TestCluster.csproj') -c Release --nologo -v q -clp:ErrorsOnly
if ($LASTEXITCODE) { throw 'Building the test cluster failed.' }
$dll = Join-Path (Get-BuildOutput (Join-Path $root 'tests/CalicoBpf.TestCluster')) 'CalicoBpf.TestCluster.dll'

$modules = [ordered]@{ current = (Resolve-Path $ModulePath).Path }
if ($BaselineModulePath) { $modules.baseline = (Resolve-Path $BaselineModulePath).Path }
$runs = foreach ($r in 1..$Rounds) { foreach ($m in $modules.Keys) { [pscustomobject]@{ Module = $m; Node = "$m-$r" } } }
$scenario = Join-Path $work 'scenario.yaml'
$lines = @('install: operator', 'calicoVersion: v3.30.7', 'nodes:')
$i = 0
foreach ($run in $runs) {
    $i++
    $lines += "  - { name: $($run.Node), address: 172.18.13.$(9 + $i), dataplane: { node: $($run.Node), randomSeed: $i, conntrack: { tcp: $Entries, udp: 10, tcp6: $Entries } } }"
}
$lines | Set-Content $scenario

$kubeconfig = Join-Path $work 'kubeconfig'
$psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
foreach ($a in @($dll, '--scenario', $scenario, '--kubeconfig', $kubeconfig, '--max-request-line', $(if ($BaselineModulePath) { '1048576' } else { '8192' }))) { $psi.ArgumentList.Add($a) }
$psi.RedirectStandardInput = $true
$psi.RedirectStandardOutput = $true
$psi.UseShellExecute = $false
$cluster = [System.Diagnostics.Process]::Start($psi)
try {
    $ready = $cluster.StandardOutput.ReadLine()
    if ($ready -notlike 'ready *') { throw "The test cluster did not start: $ready" }
    $one = {
        param($Module, $Node, $Kubeconfig)
        Import-Module $Module
        $PSDefaultParameterValues['*:Kubeconfig'] = $Kubeconfig
        $null = Get-CalicoNode
        foreach ($v6 in $false, $true) {
            $entries = @(Get-BpfConntrack -Node $Node -IPv6:$v6 -Protocol Tcp)
            $t = [Diagnostics.Stopwatch]::StartNew(); $r = $entries | Remove-BpfConntrack -Confirm:$false; $t.Stop()
            $t2 = [Diagnostics.Stopwatch]::StartNew(); $g = $entries | Remove-BpfConntrack -Confirm:$false; $t2.Stop()
            [pscustomobject]@{ Family = if ($v6) { 'IPv6' } else { 'IPv4' }; Removed = $r.Removed; Seconds = $t.Elapsed.TotalSeconds; Gone = $g.AlreadyGone; GoneSeconds = $t2.Elapsed.TotalSeconds }
        }
    }
    Write-Host "Remote bulk deletes, $(Get-BenchMachine): $Entries entries a family, $Rounds round(s)"
    $goals = foreach ($run in $runs) {
        $results = & (Join-Path $PSHOME 'pwsh') -NoProfile -NonInteractive -OutputFormat Xml -Command $one -args $modules[$run.Module], $run.Node, $kubeconfig
        foreach ($x in $results) {
            Write-Host ('{0,-8} {1} {2}: {3} removed in {4:n2} s; again, all gone ({5}), in {6:n2} s' -f $run.Module, $run.Node, $x.Family, $x.Removed, $x.Seconds, $x.Gone, $x.GoneSeconds)
            if ($run.Module -eq 'current') {
                $ratio = [math]::Round($x.Seconds / $x.GoneSeconds, 3)
                New-BenchGoal 'remote deletes (Measure-RemoteDelete)' "$($run.Node) $($x.Family): $Entries present keys removed at least 10x faster than the per-key loop (present / all gone)" "$ratio ($([math]::Round($x.Seconds, 2)) s / $([math]::Round($x.GoneSeconds, 2)) s)" ($x.Removed -eq $Entries -and $ratio -le 0.1)
            }
        }
    }
    Write-Host ''
    Write-Host (Format-BenchGoalTable $goals)
} finally {
    $cluster.StandardInput.Close()
    if (-not $cluster.WaitForExit(60000)) { $cluster.Kill() }
}
