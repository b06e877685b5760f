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
        $l = $l -replace '\b(\d+\.)?\d\d:\d\d:\d\d(\.\d{1,7})?\b', '<time>'   # TimeSpan text (JSON's "Age")
        $l = $l -replace '\s+', ' '
        $l.Trim()
    }
}

# The commands of a transcript and what each printed: @{ 'Get-BpfNat' = lines; ... } (the prompt's
# "PS> " left out; a command's output runs to the next prompt).
function Split-TranscriptCommands([string[]] $Lines) {
    $result = [ordered]@{}
    $command = $null
    foreach ($line in $Lines) {
        if ($line.StartsWith('PS> ')) { $command = $line.Substring(4); $result[$command] = [System.Collections.Generic.List[string]]::new(); continue }
        if ($null -ne $command -and $line.Trim()) { $result[$command].Add($line) }
    }
    $result
}

# Every command of both demos (node, then cluster) and what it printed.
function Get-TranscriptCommands($Transcript) {
    $commands = Split-TranscriptCommands $Transcript.Node
    foreach ($c in (Split-TranscriptCommands $Transcript.Cluster).GetEnumerator()) { $commands[$c.Key] = $c.Value }
    $commands
}

# The help examples of en-US/*.md whose command is one of the demo's, as
# @{ File; Example; Command; First; Last } (First..Last: the lines of its output block).
function Find-DemoHelpExamples([string] $HelpDirectory, $Commands) {
    foreach ($file in Get-ChildItem $HelpDirectory -Filter *.md) {
        $lines = Get-Content $file.FullName
        for ($i = 0; $i -lt $lines.Count - 1; $i++) {
            if ($lines[$i] -notmatch '^### (Example \d+.*)') { continue }
            $example = $Matches[1]
            if ($lines[$i + 1] -ne '```powershell' -or $i + 3 -ge $lines.Count -or $lines[$i + 3] -ne '```') { continue }
            $command = $lines[$i + 2]
            if (-not $Commands.Contains($command)) { continue }
            $open = $i + 4
            while ($open -lt $lines.Count -and $lines[$open] -ne '```output' -and $lines[$open] -notmatch '^#') { $open++ }
            if ($open -ge $lines.Count -or $lines[$open] -ne '```output') { continue }   # an example without output
            $close = $open + 1
            while ($close -lt $lines.Count -and $lines[$close] -ne '```') { $close++ }
            [pscustomobject]@{ File = $file.FullName; Example = $example; Command = $command; First = $open + 1; Last = $close - 1 }
        }
    }
}

# Writes the demo's output into every help example that runs one of its commands.
function Set-HelpExamplesFromTranscript([string] $HelpDirectory, $Transcript) {
    $commands = Get-TranscriptCommands $Transcript
    $examples = @(Find-DemoHelpExamples $HelpDirectory $commands)
    foreach ($group in $examples | Group-Object File) {
        $lines = [System.Collections.Generic.List[string]]::new([string[]](Get-Content $group.Name))
        foreach ($e in $group.Group | Sort-Object First -Descending) {
            $lines.RemoveRange($e.First, $e.Last - $e.First + 1)
            $lines.InsertRange($e.First, [string[]]$commands[$e.Command])
        }
        [IO.File]::WriteAllLines($group.Name, $lines)
    }
    $examples
}
