# The README's two transcripts (the tour of a node, the cluster mode) are the demo's real output:
# build.ps1 readme writes them from a fresh run, and tests/Pester/Readme.Tests.ps1 fails when the
# README and a fresh run differ beyond what changes from run to run (timings, process ids, ports,
# program ids). Dot-source it.

# Runs both demos as build.ps1 demo does, their output captured: @{ Node = lines; Cluster = lines },
# each from its first line of its own (the build's and the harness's chatter left out).
function Invoke-DemoTranscript([string] $ModulePath, [string] $Simulation, [string] $TestCluster) {
    $pwsh = Join-Path $PSHOME 'pwsh'
    $demo = Join-Path $PSScriptRoot '../demo'
    $node = & $pwsh -NoProfile -NonInteractive -File (Join-Path $demo 'Start-Demo.ps1') -ModulePath $ModulePath -Simulation $Simulation 2>&1
    if ($LASTEXITCODE) { throw "demo/Start-Demo.ps1 failed (exit code $LASTEXITCODE): $($node -join "`n")" }
    $cluster = & $pwsh -NoProfile -NonInteractive -File (Join-Path $demo 'Start-ClusterDemo.ps1') -ModulePath $ModulePath -TestCluster $TestCluster 2>&1
    if ($LASTEXITCODE) { throw "demo/Start-ClusterDemo.ps1 failed (exit code $LASTEXITCODE): $($cluster -join "`n")" }
    @{
        Node    = @(Select-TranscriptFrom ($node | ForEach-Object { "$_" }) '^Simulated Calico eBPF node ')
        Cluster = @(Select-TranscriptFrom ($cluster | ForEach-Object { "$_" }) '^Test cluster at ')
    }
}

function Select-TranscriptFrom([string[]] $Lines, [string] $FirstLine) {
    $at = 0
    while ($at -lt $Lines.Count -and $Lines[$at] -notmatch $FirstLine) { $at++ }
    if ($at -eq $Lines.Count) { throw "The demo printed no line matching '$FirstLine'." }
    $Lines[$at..($Lines.Count - 1)] | ForEach-Object { $_.TrimEnd() }
}

# The README's transcript blocks: the first ```text block after each of these headings.
$script:TranscriptHeadings = [ordered]@{ Node = '## A tour (the demo''s real output)'; Cluster = '## Cluster mode' }

function Get-ReadmeTranscript([string] $Readme) {
    $lines = Get-Content $Readme
    $result = @{}
    foreach ($key in $TranscriptHeadings.Keys) {
        $span = Find-TranscriptBlock $lines $TranscriptHeadings[$key]
        $result[$key] = if ($span.Last -ge $span.First) { @($lines[$span.First..$span.Last]) } else { @() }
    }
    $result
}

# Writes fresh transcripts into the README, leaving every other line as it is.
function Set-ReadmeTranscript([string] $Readme, $Transcript) {
    $lines = [System.Collections.Generic.List[string]]::new([string[]](Get-Content $Readme))
    foreach ($key in $TranscriptHeadings.Keys) {
        $span = Find-TranscriptBlock $lines.ToArray() $TranscriptHeadings[$key]
        $lines.RemoveRange($span.First, $span.Last - $span.First + 1)
        $lines.InsertRange($span.First, [string[]]$Transcript[$key])
    }
    [IO.File]::WriteAllLines($Readme, $lines)
}

function Find-TranscriptBlock([string[]] $Lines, [string] $Heading) {
    $h = [array]::IndexOf($Lines, $Heading)
    if ($h -lt 0) { throw "README.md has no heading '$Heading'." }
    $open = $h + 1
    while ($open -lt $Lines.Count -and $Lines[$open] -ne '```text') { $open++ }
    $close = $open + 1
    while ($close -lt $Lines.Count -and $Lines[$close] -ne '```') { $close++ }
    if ($close -ge $Lines.Count) { throw "README.md has no ``````text block after '$Heading'." }
    @{ First = $open + 1; Last = $close - 1 }
}

# A transcript as two runs of the same demo share it: timings, process ids, ports and program ids
# replaced by placeholders, runs of spaces as one (a table column sized to a timing moves the rest).
function ConvertTo-ComparableTranscript([string[]] $Lines) {
    foreach ($line in $Lines) {
        $l = $line -replace '(?<=calicobpf-(cluster-)?demo-)\d+', 'PID'
        $l = $l -replace '127\.0\.0\.1:\d+', '127.0.0.1:PORT'
        $l = $l -replace '\b(ing|egr|xdp):\d+', '$1:ID'
        $l = $l -replace '\b(\d+d)?(\d+h)?(\d+m)?\d+(\.\d+)?(ns|µs|us|ms|s)\b', '<time>'
        $l = $l -replace '\b(\d+d\d+h|\d+h\d+m)\b', '<time>'
        $l = $l -replace '\s+', ' '
        $l.Trim()
    }
}
