#!/usr/bin/env pwsh
<#
.SYNOPSIS
    How long Import-Module CalicoBpf takes in a fresh pwsh (goal: under half a second), against
    re-importing Microsoft.PowerShell.Utility in the same process as a reference.
#>
[CmdletBinding()]
param([Parameter(Mandatory)] [string] $ModulePath, [int] $Runs = 5)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'BenchGoals.psm1') -Force
$pwsh = Join-Path $PSHOME 'pwsh'
$samples = foreach ($i in 1..$Runs) {
    $line = & $pwsh -NoProfile -NonInteractive -Command "`$sw = [Diagnostics.Stopwatch]::StartNew(); Import-Module '$ModulePath'; `$a = `$sw.Elapsed.TotalMilliseconds; `$sw.Restart(); Import-Module Microsoft.PowerShell.Utility -Force; '{0} {1}' -f `$a, `$sw.Elapsed.TotalMilliseconds"
    , [double[]]($line -split ' ')
}
$import = ($samples | ForEach-Object { $_[0] } | Sort-Object)[[int][math]::Floor(($Runs - 1) / 2)]
$reference = ($samples | ForEach-Object { $_[1] } | Sort-Object)[[int][math]::Floor(($Runs - 1) / 2)]
$null = New-BenchGoal 'import time (Measure-ImportTime)' 'Import-Module CalicoBpf under 500 ms in a fresh pwsh' "$([math]::Round($import)) ms ($([math]::Round($import / $reference, 1))x re-importing Microsoft.PowerShell.Utility)" ($import -lt 500)
$report = @"

Import time, $(Get-BenchMachine) (median of $Runs fresh pwsh processes):

| measurement | time | reference | ratio | goal |
|---|---|---|---|---|
| Import-Module CalicoBpf | $([math]::Round($import)) ms | Import-Module Microsoft.PowerShell.Utility -Force: $([math]::Round($reference)) ms | $([math]::Round($import / $reference, 1)) | under 500 ms |
"@
$out = Join-Path (Split-Path $PSScriptRoot) 'out/bench'
$null = New-Item -ItemType Directory -Force $out
Add-Content -Path (Join-Path $out 'results.md') -Value $report
Write-Host $report
