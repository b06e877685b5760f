#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Builds, tests, demonstrates, benchmarks and packages CalicoBpf.
.DESCRIPTION
    One entry point for every task. From a fresh clone with only the .NET SDK:
        dotnet tool restore; dotnet pwsh ./build.ps1 demo
        dotnet tool restore; dotnet pwsh ./build.ps1 test
    Tasks:
        build    an importable module in out/CalicoBpf (manifest, DLLs, formats, types, en-US help)
        test     xunit (Core.Tests, TestCluster.Tests) and Pester; the last line is "N passed, N failed, N skipped"
        demo     seeds a simulated node's dataplane into real maps and runs the main job against it
        readme   runs the demo and writes its output into README.md's two transcripts and the help examples that run its commands (tests/Pester/Readme.Tests.ps1 checks them)
        bench    the benchmarks of docs/performance.md (conntrack, NAT, routes, cluster, fleets, deletes, import, Tab completion, sampling, bundles)
        fuzz     SharpFuzz + AFL++ on every decoder and parser target, -FuzzSeconds each (fuzz/Invoke-Fuzz.ps1, docs/reliability.md)
        package  out/CalicoBpf.<version>.nupkg, installable with Install-PSResource
        clean    removes out/ and the build folders
.PARAMETER Task
    One or more of build, test, demo, readme, bench, fuzz, package, clean. Default: build.
.PARAMETER Configuration
    Release (default) or Debug.
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'demo', 'readme', 'bench', 'fuzz', 'package', 'clean')]
    [string[]] $Task = @('build'),

    [ValidateSet('Release', 'Debug')]
    [string] $Configuration = 'Release',

    # bench: conntrack entries to fill (the goal is stated for 512000).
    [int] $BenchEntries = 512000,

    # fuzz: seconds of AFL++ per target.
    [int] $FuzzSeconds = 120,

    # fuzz: the targets to run (default: every folder of fuzz/corpus).
    [string[]] $FuzzTarget,

    # fuzz: how many afl-fuzz instances run at once, one per core.
    [int] $FuzzJobs = [Environment]::ProcessorCount
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = $PSScriptRoot
$out = Join-Path $root 'out'
$moduleOut = Join-Path $out 'CalicoBpf'

. (Join-Path $root 'build/Common.ps1')
. (Join-Path $root 'build/Transcript.ps1')

function Get-ModuleVersion { Get-BuildProperty 'CalicoBpfVersion' }

function Invoke-Build {
    $version = Get-ModuleVersion
    Write-Host "Building CalicoBpf $version ($Configuration)"
    Invoke-Native dotnet @('build', (Join-Path $root 'src/CalicoBpf/CalicoBpf.csproj'), '-c', $Configuration, '--nologo', '-v', 'q', '-clp:ErrorsOnly')
    $bin = Get-BuildOutput (Join-Path $root 'src/CalicoBpf') $Configuration

    if (Test-Path $moduleOut) { Remove-Item -Recurse -Force $moduleOut }
    $lib = New-Item -ItemType Directory -Force (Join-Path $moduleOut 'lib')
    # The cmdlet assembly sits in the module root (default load context); the engine and every
    # third-party assembly go to lib/ for the module's private AssemblyLoadContext.
    Copy-Item (Join-Path $bin 'CalicoBpf.dll'), (Join-Path $bin 'CalicoBpf.pdb') $moduleOut
    Get-ChildItem $bin -File | Where-Object { $_.Name -notlike 'CalicoBpf.dll' -and $_.Name -notlike 'CalicoBpf.pdb' -and $_.Name -notlike 'CalicoBpf.deps.json' -and $_.Extension -in '.dll', '.pdb' } |
        Copy-Item -Destination $lib
    Copy-Item (Join-Path $root 'src/CalicoBpf/Formats/*.ps1xml') $moduleOut

    $manifest = Get-Content -Raw (Join-Path $root 'CalicoBpf.psd1')
    $manifest = $manifest -replace "ModuleVersion\s*=\s*'[^']*'", "ModuleVersion        = '$version'"
    Set-Content -Path (Join-Path $moduleOut 'CalicoBpf.psd1') -Value $manifest -NoNewline

    # Help: markdown in PlatyPS's schema -> MAML. PlatyPS when it is installed, our converter otherwise.
    $helpOut = New-Item -ItemType Directory -Force (Join-Path $moduleOut 'en-US')
    $pwsh = Join-Path $PSHOME 'pwsh'
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'build/ConvertTo-Maml.ps1'),
        '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'), '-Source', (Join-Path $root 'en-US'), '-Destination', $helpOut)
    Write-Host "Module laid out in $moduleOut"
}

function Get-ToolPackage([string] $Id, [string] $Version) {
    $cache = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages' }
    $dir = Join-Path $cache "$($Id.ToLowerInvariant())/$Version"
    if (-not (Test-Path $dir)) {
        Invoke-Native dotnet @('restore', (Join-Path $root 'tests/tools/Tools.csproj'), '--nologo', '-v', 'q')
    }
    return $dir
}

function Invoke-Xunit([string] $Project, [string] $Results) {
    # One xunit project's tests, and its counts from its trx (no trx counts as one failure).
    $name = [IO.Path]::GetFileNameWithoutExtension($Project)
    Write-Host "xunit: $name"
    Invoke-Native dotnet @('test', $Project, '-c', $Configuration, '--nologo',
        '--logger', "trx;LogFileName=$name.trx", '--results-directory', $Results) -AllowFailure | Out-Host
    $trx = Join-Path $Results "$name.trx"
    if (-not (Test-Path $trx)) {
        Write-Warning "xunit ($name) produced no results file: counting it as one failure."
        return [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 }
    }
    $counters = ([xml](Get-Content -Raw $trx)).TestRun.ResultSummary.Counters
    [pscustomobject]@{
        Passed  = [int]$counters.passed
        Failed  = [int]$counters.failed + [int]$counters.error + [int]$counters.timeout + [int]$counters.aborted
        # A skipped test is counted in total, not in executed (the trx leaves notExecuted at 0).
        Skipped = [int]$counters.total - [int]$counters.executed
    }
}

function Invoke-Test {
    # Runs after package and testcluster (see $dependsOn): the Pester suite installs the package.
    $results = Join-Path $out 'TestResults'
    if (Test-Path $results) { Remove-Item -Recurse -Force $results }
    $null = New-Item -ItemType Directory -Force $results

    # Core against the kernel; the test cluster's engine (started in-process, against kubectl) and its own readers.
    $xPassed = 0; $xFailed = 0; $xSkipped = 0
    foreach ($project in 'CalicoBpf.Core.Tests', 'CalicoBpf.TestCluster.Tests') {
        $x = Invoke-Xunit (Join-Path $root "tests/$project/$project.csproj") $results
        $xPassed += $x.Passed; $xFailed += $x.Failed; $xSkipped += $x.Skipped
    }

    # The test cluster (a Kubernetes API server over simulated nodes) for the cluster-mode suites, and
    # the simulator (built with it) for the suites that seed maps on this machine.
    $env:CALICOBPF_TESTCLUSTER = Get-TestClusterPath
    $env:CALICOBPF_SIMULATION = Get-SimulationPath
    # Its calico-node containers carry the bpftool of their release: 7.5.0 is fetched from Debian once.
    $null = & bash (Join-Path $root 'tests/tools/get-bpftool75.sh')
    if ($LASTEXITCODE) { Write-Warning "bpftool 7.5.0 for the test cluster's calico-node containers could not be fetched: this machine's bpftool stands in." }

    Write-Host 'Pester: tests/Pester'
    $pester = Join-Path (Get-ToolPackage 'Pester' '5.7.1') 'tools/Pester.psd1'
    # The isolation tests load other YamlDotNet versions before the module.
    $null = Get-ToolPackage 'YamlDotNet' '11.2.1'
    $null = Get-ToolPackage 'YamlDotNet' '16.3.0'
    $pwsh = Join-Path $PSHOME 'pwsh'
    $pesterResult = Join-Path $results 'pester.xml'
    $env:CALICOBPF_MODULE = Join-Path $moduleOut 'CalicoBpf.psd1'
    $env:CALICOBPF_PACKAGE = Join-Path $out "CalicoBpf.$(Get-ModuleVersion).nupkg"
    $script = @"
Import-Module '$pester' -MinimumVersion 5.7.1
`$c = New-PesterConfiguration
`$c.Run.Path = '$(Join-Path $root 'tests/Pester')'
`$c.Run.Exit = `$false
`$c.Output.Verbosity = 'Detailed'
`$c.TestResult.Enabled = `$true
`$c.TestResult.OutputFormat = 'NUnitXml'
`$c.TestResult.OutputPath = '$pesterResult'
Invoke-Pester -Configuration `$c
"@
    & $pwsh -NoProfile -NonInteractive -Command $script
    $pPassed = 0; $pFailed = 0; $pSkipped = 0
    if (Test-Path $pesterResult) {
        $r = ([xml](Get-Content -Raw $pesterResult)).'test-results'
        $pFailed = [int]$r.failures + [int]$r.errors + [int]$r.invalid
        $pSkipped = [int]$r.skipped + [int]$r.ignored + [int]$r.'not-run' + [int]$r.inconclusive
        $pPassed = [int]$r.total - $pFailed - [int]$r.'not-run' - [int]$r.inconclusive - [int]$r.ignored - [int]$r.skipped
    } else {
        Write-Warning 'Pester produced no results file: counting it as one failure.'
        $pFailed = 1
    }

    $passed = $xPassed + $pPassed
    $failed = $xFailed + $pFailed
    $skipped = $xSkipped + $pSkipped
    Write-Host "xunit: $xPassed passed, $xFailed failed, $xSkipped skipped; Pester: $pPassed passed, $pFailed failed, $pSkipped skipped"
    Write-Host "$passed passed, $failed failed, $skipped skipped"
    if ($failed -gt 0 -or $passed -eq 0) { exit 1 }
}

function Invoke-TestCluster {
    Invoke-Native dotnet @('build', (Join-Path $root 'tests/CalicoBpf.TestCluster/CalicoBpf.TestCluster.csproj'), '-c', $Configuration, '--nologo', '-v', 'q', '-clp:ErrorsOnly')
}

function Get-TestClusterPath {
    Join-Path (Get-BuildOutput (Join-Path $root 'tests/CalicoBpf.TestCluster') $Configuration) 'CalicoBpf.TestCluster.dll'
}

# The simulator is test support, not part of the module: the test cluster's build builds it.
function Get-SimulationPath {
    Join-Path (Get-BuildOutput (Join-Path $root 'tests/CalicoBpf.Simulation') $Configuration) 'CalicoBpf.Simulation.dll'
}

function Invoke-Demo {
    $pwsh = Join-Path $PSHOME 'pwsh'
    # One node, locally...
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'demo/Start-Demo.ps1'), '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'),
        '-Simulation', (Get-SimulationPath))
    # ...then a small cluster through the Kubernetes API.
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'demo/Start-ClusterDemo.ps1'), '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'),
        '-TestCluster', (Get-TestClusterPath))
}

function Invoke-HostTools {
    # The Debian packages and the bpftool the demo and the tests run on the host (build/install-host-tools.sh).
    if (-not $IsLinux) { return }
    & bash (Join-Path $root 'build/install-host-tools.sh')
    if ($LASTEXITCODE) { Write-Warning 'Some host tools are missing (see above): the demo and the kernel tests need them.' }
}

function Invoke-Readme {
    $readme = Join-Path $root 'README.md'
    $transcript = Invoke-DemoTranscript -ModulePath (Join-Path $moduleOut 'CalicoBpf.psd1') -Simulation (Get-SimulationPath) -TestCluster (Get-TestClusterPath)
    Set-ReadmeTranscript $readme $transcript
    Write-Host "README.md: the tour ($($transcript.Node.Count) lines) and the cluster mode ($($transcript.Cluster.Count) lines) written from this run of the demo."
    $examples = @(Set-HelpExamplesFromTranscript (Join-Path $root 'en-US') $transcript)
    Write-Host "en-US: $($examples.Count) help examples that run a demo command written from the same run ($(($examples | ForEach-Object { "$(Split-Path -Leaf $_.File) $($_.Example -replace ':.*')" }) -join ', '))."
}

function Invoke-Fuzz {
    & (Join-Path $root 'fuzz/Invoke-Fuzz.ps1') -FuzzSeconds $FuzzSeconds -FuzzTarget $FuzzTarget -FuzzJobs $FuzzJobs
}

function Invoke-Bench {
    $pwsh = Join-Path $PSHOME 'pwsh'
    Import-Module (Join-Path $root 'bench/BenchGoals.psm1') -Force
    Clear-BenchGoal
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'bench/Invoke-Benchmark.ps1'),
        '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'), '-Entries', $BenchEntries)
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'bench/Invoke-ClusterBenchmark.ps1'),
        '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'), '-Entries', $BenchEntries)
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'bench/Measure-RemoteDelete.ps1'),
        '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'), '-Rounds', 1)
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'bench/Measure-ImportTime.ps1'),
        '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'))
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'bench/Measure-Completion.ps1'),
        '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'), '-TestCluster', (Get-TestClusterPath))
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'bench/Measure-Sampling.ps1'),
        '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'), '-TestClusterPath', (Get-TestClusterPath), '-Entries', $BenchEntries)
    Invoke-Native $pwsh @('-NoProfile', '-NonInteractive', '-File', (Join-Path $root 'bench/Measure-Bundle.ps1'),
        '-ModulePath', (Join-Path $moduleOut 'CalicoBpf.psd1'), '-TestClusterPath', (Get-TestClusterPath), '-Entries', $BenchEntries)
    # One table of every goal above, with the machine and the date (also out/bench/goals.md).
    $missed = Write-BenchGoalSummary
    if ($missed) { Write-Warning "$missed goal(s) not met (NO above): docs/performance.md says which are floor-bound." }
}

function Invoke-Package {
    $version = Get-ModuleVersion
    $repo = Join-Path $out 'repo'
    if (Test-Path $repo) { Remove-Item -Recurse -Force $repo }
    $null = New-Item -ItemType Directory $repo
    $repoName = "CalicoBpfBuild$PID"
    Register-PSResourceRepository -Name $repoName -Uri $repo -Trusted
    try {
        Publish-PSResource -Path $moduleOut -Repository $repoName -SkipDependenciesCheck
    } finally {
        Unregister-PSResourceRepository -Name $repoName
    }
    $nupkg = Get-ChildItem $repo -Filter '*.nupkg' | Select-Object -First 1
    Move-Item $nupkg.FullName (Join-Path $out $nupkg.Name) -Force
    Remove-Item -Recurse -Force $repo
    Write-Host "Package: $(Join-Path $out $nupkg.Name) (CalicoBpf $version)"
}

function Invoke-Clean {
    foreach ($p in @($out) + (Get-ChildItem $root -Recurse -Directory -Include bin, obj | Where-Object FullName -notlike '*/.git/*').FullName) {
        if ($p -and (Test-Path $p)) { Remove-Item -Recurse -Force $p }
    }
}

# What each task needs first. A task runs at most once per invocation, so `build test` builds once.
$dependsOn = @{
    build       = @()
    package     = @('build')
    testcluster = @()
    hosttools   = @()
    test        = @('hosttools', 'package', 'testcluster')
    demo        = @('hosttools', 'build', 'testcluster')
    readme      = @('hosttools', 'build', 'testcluster')
    bench       = @('hosttools', 'build', 'testcluster')
    fuzz        = @()
    clean       = @()
}
$done = @{}

function Invoke-Task([string] $Name) {
    if ($done[$Name]) { return }
    foreach ($d in $dependsOn[$Name]) { Invoke-Task $d }
    switch ($Name) {
        'build' { Invoke-Build }
        'package' { Invoke-Package }
        'testcluster' { Invoke-TestCluster }
        'test' { Invoke-Test }
        'hosttools' { Invoke-HostTools }
        'demo' { Invoke-Demo }
        'readme' { Invoke-Readme }
        'bench' { Invoke-Bench }
        'fuzz' { Invoke-Fuzz }
        'clean' { Invoke-Clean; $done.Clear() }   # what was built before a clean is gone
    }
    if ($Name -ne 'clean') { $done[$Name] = $true }
}

foreach ($t in $Task) { Invoke-Task $t }
