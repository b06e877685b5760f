# The goals of every benchmark in one place: each bench script records its goals here as it prints
# them, and build.ps1 bench ends with one table of all of them, with the machine and the date.
# A goal is a line of out/bench/goals.jsonl: benchmark, goal, what was measured, met.

$script:GoalsFile = Join-Path (Split-Path $PSScriptRoot) 'out/bench/goals.jsonl'

function Get-BenchMachine {
    # The line each benchmark heads its report with: date and time (UTC), CPU, cores, memory, kernel.
    $cpu = (Get-Content /proc/cpuinfo | Where-Object { $_ -like 'model name*' } | Select-Object -First 1) -replace '^.*:\s*', ''
    $memory = [math]::Round([long]((Get-Content /proc/meminfo -TotalCount 1) -replace '\D', '') / 1MB)
    "$((Get-Date).ToUniversalTime().ToString('yyyy-MM-dd HH:mm')) UTC, $cpu, $([Environment]::ProcessorCount) cores, $memory GiB, kernel $(uname -r)"
}

function New-BenchGoal {
    # One goal of one benchmark, recorded in out/bench/goals.jsonl for build.ps1 bench's summary.
    param(
        [Parameter(Mandatory)] [string] $Benchmark,
        [Parameter(Mandatory)] [string] $Goal,
        [Parameter(Mandatory)] [string] $Measured,
        [Parameter(Mandatory)] [bool] $Met
    )
    $g = [pscustomobject]@{ Benchmark = $Benchmark; Goal = $Goal; Measured = $Measured; Met = $Met }
    $null = New-Item -ItemType Directory -Force (Split-Path $script:GoalsFile)
    Add-Content -Path $script:GoalsFile -Value ($g | ConvertTo-Json -Compress)
    $g
}

function Format-BenchGoalTable {
    # A markdown table of goals: goal, measured, met (with the benchmark's name when -Benchmark).
    param([object[]] $Goals, [switch] $Benchmark)
    $cell = { param($s) ([string]$s) -replace '\|', '\|' }
    if ($Benchmark) {
        "| benchmark | goal | measured | met |`n|---|---|---|---|`n" +
        (($Goals | ForEach-Object { "| $($_.Benchmark) | $(& $cell $_.Goal) | $(& $cell $_.Measured) | $(if ($_.Met) { 'yes' } else { 'NO' }) |" }) -join "`n")
    } else {
        "| goal | measured | met |`n|---|---|---|`n" +
        (($Goals | ForEach-Object { "| $(& $cell $_.Goal) | $(& $cell $_.Measured) | $(if ($_.Met) { 'yes' } else { 'NO' }) |" }) -join "`n")
    }
}

function Clear-BenchGoal {
    # build.ps1 bench starts with no goals recorded.
    Remove-Item -Force $script:GoalsFile -ErrorAction SilentlyContinue
}

function Write-BenchGoalSummary {
    # Every goal recorded since Clear-BenchGoal, in one table; written to out/bench/goals.md too.
    # Returns the number of goals not met.
    $goals = @(if (Test-Path $script:GoalsFile) { Get-Content $script:GoalsFile | ForEach-Object { $_ | ConvertFrom-Json } })
    $missed = @($goals | Where-Object { -not $_.Met }).Count
    $report = "Every goal of this run, $(Get-BenchMachine):`n`n$(Format-BenchGoalTable $goals -Benchmark)`n`n" +
        "$($goals.Count - $missed) of $($goals.Count) goals met.`n"
    Set-Content -Path (Join-Path (Split-Path $script:GoalsFile) 'goals.md') -Value $report
    Write-Host ''
    Write-Host $report
    $missed
}

Export-ModuleMember -Function Get-BenchMachine, New-BenchGoal, Format-BenchGoalTable, Clear-BenchGoal, Write-BenchGoalSummary
