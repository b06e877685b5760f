#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Fuzzes every decoder and parser target the runner fuzz/CalicoBpf.Fuzz knows (CalicoBpf.Fuzz.Targets,
    CalicoBpf.Fuzz.ClusterTargets) with SharpFuzz + AFL++ (build.ps1 fuzz).
.DESCRIPTION
    The assemblies the targets reach (the engine, the simulator, the test cluster) are instrumented in a copy of the build (out/fuzz/bin), afl-fuzz runs each
    target for -FuzzSeconds from its seed corpus (fuzz/corpus/TARGET), and every crash is replayed
    through the uninstrumented build to name its exception. Results: out/fuzz/results.md (copy them
    to docs/reliability.md). AFL++ is installed with apt when missing.
#>
[CmdletBinding()]
param(
    # Seconds of AFL++ per target.
    [int] $FuzzSeconds = 120,

    # The targets to run (default: every folder of fuzz/corpus).
    [string[]] $FuzzTarget,

    # How many afl-fuzz instances run at once, one per core.
    [int] $FuzzJobs = [Environment]::ProcessorCount
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = Split-Path $PSScriptRoot
$out = Join-Path $root 'out'
. (Join-Path $root 'build/Common.ps1')

if (-not (Get-Command afl-fuzz -ErrorAction SilentlyContinue)) {
    & apt-get update -qq | Out-Null
    & apt-get install -y -qq --no-install-recommends afl++ | Out-Null
    if ($LASTEXITCODE) { throw 'apt-get install afl++ failed.' }
}

$fuzz = Join-Path $out 'fuzz'
Remove-Item -Recurse -Force $fuzz -ErrorAction SilentlyContinue
$project = Join-Path $root 'fuzz/CalicoBpf.Fuzz/CalicoBpf.Fuzz.csproj'
Invoke-Native dotnet @('build', $project, '-c', 'Release', '--nologo', '-v', 'q', '-clp:ErrorsOnly')
Invoke-Native dotnet @('publish', $project, '-c', 'Release', '-o', (Join-Path $fuzz 'bin'), '--nologo', '-v', 'q', '-clp:ErrorsOnly')
Invoke-Native dotnet @('tool', 'restore')
# The engine, the simulator's scenario reader (node-scenario) and the test cluster's (cluster-scenario, kube-protobuf).
foreach ($dll in 'CalicoBpf.Core.dll', 'CalicoBpf.Simulation.dll', 'CalicoBpf.TestCluster.dll') {
    Invoke-Native dotnet @('tool', 'run', 'sharpfuzz', (Join-Path $fuzz "bin/$dll"))
}
$replay = Join-Path (Get-BuildOutput (Join-Path $root 'fuzz/CalicoBpf.Fuzz')) 'CalicoBpf.Fuzz.dll'
$env:AFL_SKIP_BIN_CHECK = '1'; $env:AFL_NO_UI = '1'; $env:AFL_SKIP_CPUFREQ = '1'; $env:AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES = '1'
$targets = if ($FuzzTarget) { $FuzzTarget -split "," | Where-Object { $_ } } else { (Get-ChildItem (Join-Path $root 'fuzz/corpus') -Directory).Name }
# Up to -FuzzJobs afl-fuzz instances at once (AFL++ binds each to a free core).
$queue = [Collections.Generic.Queue[string]]::new([string[]]$targets)
$running = [Collections.Generic.List[Diagnostics.Process]]::new()
$null = New-Item -ItemType Directory -Force (Join-Path $fuzz 'findings')
while ($queue.Count -or $running.Count) {
    while ($queue.Count -and $running.Count -lt [Math]::Max(1, $FuzzJobs)) {
        $target = $queue.Dequeue()
        $afl = @('-i', (Join-Path $root "fuzz/corpus/$target"), '-o', (Join-Path $fuzz "findings/$target"), '-V', $FuzzSeconds, '-t', '5000', '-m', 'none',
            '--', 'dotnet', (Join-Path $fuzz 'bin/CalicoBpf.Fuzz.dll'), $target)
        $running.Add((Start-Process afl-fuzz -ArgumentList $afl -PassThru -NoNewWindow -RedirectStandardOutput (Join-Path $fuzz "$target.log") -RedirectStandardError (Join-Path $fuzz "$target.err")))
    }

    Start-Sleep -Seconds 1
    $null = $running.RemoveAll({ param($p) $p.HasExited })
}

$rows = foreach ($target in $targets) {
    $findings = Join-Path $fuzz "findings/$target"
    $stats = @{}
    foreach ($l in Get-Content (Join-Path $findings 'default/fuzzer_stats')) { $k, $v = $l -split '\s*:\s*', 2; $stats[$k.Trim()] = $v.Trim() }
    $crashes = @(Get-ChildItem (Join-Path $findings 'default/crashes') -Filter 'id*' -ErrorAction SilentlyContinue)
    $kinds = foreach ($c in $crashes) {
        $one = Join-Path $fuzz 'one'; Remove-Item -Recurse -Force $one -ErrorAction SilentlyContinue; $null = New-Item -ItemType Directory $one
        Copy-Item -LiteralPath $c.FullName $one
        (& dotnet $replay $target --replay $one 2>&1 | Select-String 'Unhandled exception\. (\S+?):' | ForEach-Object { $_.Matches[0].Groups[1].Value }) | Select-Object -First 1
    }
    $found = ($kinds | Where-Object { $_ } | Group-Object | ForEach-Object { "$($_.Count) x $($_.Name)" }) -join ', '
    "| $target | $FuzzSeconds s | $($stats.execs_done) | $($stats.execs_per_sec) | $($stats.corpus_count) | $($crashes.Count)$(if ($found) { " ($found)" }) |"
}
$report = @"

Fuzzing $(Get-Date -AsUTC -Format 'yyyy-MM-dd'), SharpFuzz + AFL++, $FuzzSeconds s per target, $FuzzJobs at a time:

| target | time | executions | per second | corpus | crashes |
|---|---|---|---|---|---|
$($rows -join "`n")
"@
Set-Content -Path (Join-Path $fuzz 'results.md') -Value $report
Write-Host $report
