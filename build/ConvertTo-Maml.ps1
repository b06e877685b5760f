#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Turns cmdlet help written as markdown in PlatyPS's schema into MAML, and about_*.md into .help.txt.
.DESCRIPTION
    Uses PlatyPS (New-ExternalHelp) when it is installed. Otherwise converts with this script:
    syntax comes from the built cmdlets' own metadata, everything else from the markdown
    (SYNOPSIS, DESCRIPTION, EXAMPLES, PARAMETERS, INPUTS, OUTPUTS, NOTES, RELATED LINKS).
    A cmdlet without a page, or a page that lacks a section, fails the build.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Source,
    [Parameter(Mandatory)] [string] $Destination
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$module = Import-Module $ModulePath -PassThru -Force
$commands = @(Get-Command -Module $module.Name -CommandType Cmdlet | Sort-Object Name)
$common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters

foreach ($about in Get-ChildItem $Source -Filter 'about_*.md') {
    $text = (Get-Content -Raw $about.FullName) -replace '(?m)^#+\s*', '' -replace '(?m)^```\w*\s*$\r?\n?', ''
    Set-Content -Path (Join-Path $Destination ($about.BaseName + '.help.txt')) -Value $text
}

$platyPS = Get-Module -ListAvailable -Name platyPS | Sort-Object Version -Descending | Select-Object -First 1
if ($platyPS) {
    Import-Module $platyPS
    $pages = $commands | ForEach-Object { Join-Path $Source "$($_.Name).md" }
    New-ExternalHelp -Path $pages -OutputPath $Destination -Force | Out-Null
    return
}

function Split-Sections([string] $Text, [string] $Marker) {
    # Splits markdown into (heading, body) pairs at lines starting with $Marker, outside code fences.
    $sections = [ordered]@{}
    $current = $null
    $buffer = [System.Text.StringBuilder]::new()
    $inFence = $false
    foreach ($line in $Text -split "`r?`n") {
        if ($line -match '^```') { $inFence = -not $inFence }
        if (-not $inFence -and $line.StartsWith($Marker + ' ')) {
            if ($null -ne $current) { $sections[$current] = $buffer.ToString().Trim() }
            $current = $line.Substring($Marker.Length + 1).Trim()
            $null = $buffer.Clear()
            continue
        }
        if ($null -ne $current) { $null = $buffer.AppendLine($line) }
    }
    if ($null -ne $current) { $sections[$current] = $buffer.ToString().Trim() }
    return $sections
}

function ConvertTo-Paragraphs([string] $Text) {
    # Markdown paragraphs become maml:para elements; code fences keep their lines.
    $paras = [System.Collections.Generic.List[string]]::new()
    $inFence = $false
    $buffer = [System.Collections.Generic.List[string]]::new()
    foreach ($line in $Text -split "`r?`n") {
        if ($line -match '^```') {
            if ($buffer.Count) { $paras.Add(($buffer -join ($inFence ? "`n" : ' '))); $buffer.Clear() }
            $inFence = -not $inFence
            continue
        }
        if ($inFence) { $buffer.Add($line); continue }
        if ([string]::IsNullOrWhiteSpace($line)) {
            if ($buffer.Count) { $paras.Add(($buffer -join ' ')); $buffer.Clear() }
            continue
        }
        if ($line -match '^\s*[-*] ' -and $buffer.Count) { $paras.Add(($buffer -join ' ')); $buffer.Clear() }
        $buffer.Add($line.Trim())
    }
    if ($buffer.Count) { $paras.Add(($buffer -join ($inFence ? "`n" : ' '))) }
    return $paras
}

function Write-Paras([System.Xml.XmlWriter] $W, [string] $Text) {
    foreach ($p in ConvertTo-Paragraphs $Text) { $W.WriteElementString('maml', 'para', $ns.maml, $p) }
}

$ns = @{
    maml    = 'http://schemas.microsoft.com/maml/2004/10'
    command = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
    dev     = 'http://schemas.microsoft.com/maml/dev/2004/10'
}

$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; Encoding = [System.Text.UTF8Encoding]::new($false) }
$helpFile = Join-Path $Destination "$($module.Name).dll-Help.xml"
$w = [System.Xml.XmlWriter]::Create($helpFile, $settings)
$w.WriteStartDocument()
$w.WriteStartElement('helpItems')
$w.WriteAttributeString('schema', 'maml')
$w.WriteAttributeString('xmlns', 'maml', $null, $ns.maml)
$w.WriteAttributeString('xmlns', 'command', $null, $ns.command)
$w.WriteAttributeString('xmlns', 'dev', $null, $ns.dev)

foreach ($cmd in $commands) {
    $page = Join-Path $Source "$($cmd.Name).md"
    if (-not (Test-Path $page)) { throw "$($cmd.Name) has no help page: write $page." }
    $text = Get-Content -Raw $page
    $top = Split-Sections $text '##'
    foreach ($required in 'SYNOPSIS', 'DESCRIPTION', 'EXAMPLES', 'PARAMETERS', 'OUTPUTS') {
        if (-not $top.Contains($required) -or [string]::IsNullOrWhiteSpace($top[$required])) { throw "$page has no $required section." }
    }
    $paramDocs = Split-Sections $top['PARAMETERS'] '###'
    $examples = Split-Sections $top['EXAMPLES'] '###'
    $verb, $noun = $cmd.Name -split '-', 2

    $w.WriteStartElement('command', 'command', $ns.command)
    $w.WriteStartElement('command', 'details', $ns.command)
    $w.WriteElementString('command', 'name', $ns.command, $cmd.Name)
    $w.WriteElementString('command', 'verb', $ns.command, $verb)
    $w.WriteElementString('command', 'noun', $ns.command, $noun)
    $w.WriteStartElement('maml', 'description', $ns.maml); Write-Paras $w $top['SYNOPSIS']; $w.WriteEndElement()
    $w.WriteEndElement()
    $w.WriteStartElement('maml', 'description', $ns.maml); Write-Paras $w $top['DESCRIPTION']; $w.WriteEndElement()

    $described = @{}
    $defaults = @{}
    foreach ($key in $paramDocs.Keys) {
        if ($key -notlike '-*') { continue }
        $described[$key.Substring(1)] = ($paramDocs[$key] -split '```yaml')[0].Trim()
        $dm = [regex]::Match($paramDocs[$key], '(?m)^Default value:\s*(.*?)\s*$')
        $defaults[$key.Substring(1)] = if ($dm.Success -and $dm.Groups[1].Value) { $dm.Groups[1].Value } else { 'None' }
    }
    $parameters = $cmd.Parameters.Values | Where-Object { $_.Name -notin $common } | Sort-Object Name
    foreach ($p in $parameters) {
        if (-not $described.ContainsKey($p.Name) -or -not $described[$p.Name]) { throw "$page does not describe parameter -$($p.Name)." }
    }

    function Write-Parameter($Parameter, $SetData) {
        $attr = $Parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.ParameterAttribute] } | Select-Object -First 1
        $required = if ($SetData) { $SetData.IsMandatory } else { [bool]$attr.Mandatory }
        $position = if ($SetData -and $SetData.Position -ge 0) { [string]$SetData.Position } elseif ($attr -and $attr.Position -ge 0) { [string]$attr.Position } else { 'named' }
        $pipeline = @()
        if ($attr.ValueFromPipeline) { $pipeline += 'ByValue' }
        if ($attr.ValueFromPipelineByPropertyName) { $pipeline += 'ByPropertyName' }
        $pipelineText = if ($pipeline) { "True ($($pipeline -join ', '))" } else { 'False' }
        $wildcards = [bool]($Parameter.Attributes | Where-Object { $_ -is [System.Management.Automation.SupportsWildcardsAttribute] })
        $typeName = $Parameter.ParameterType.Name
        $w.WriteStartElement('command', 'parameter', $ns.command)
        $w.WriteAttributeString('required', ([string]$required).ToLowerInvariant())
        $w.WriteAttributeString('variableLength', 'true')
        $w.WriteAttributeString('globbing', ([string]$wildcards).ToLowerInvariant())
        $w.WriteAttributeString('pipelineInput', $pipelineText)
        $w.WriteAttributeString('position', $position)
        $w.WriteAttributeString('aliases', (($Parameter.Aliases -join ', ') | ForEach-Object { if ($_) { $_ } else { 'none' } }))
        $w.WriteElementString('maml', 'name', $ns.maml, $Parameter.Name)
        $w.WriteStartElement('maml', 'description', $ns.maml); Write-Paras $w $described[$Parameter.Name]; $w.WriteEndElement()
        if ($Parameter.ParameterType -ne [System.Management.Automation.SwitchParameter]) {
            $w.WriteStartElement('command', 'parameterValue', $ns.command)
            $w.WriteAttributeString('required', 'true')
            $w.WriteAttributeString('variableLength', 'false')
            $w.WriteString($typeName)
            $w.WriteEndElement()
        }
        $w.WriteStartElement('dev', 'type', $ns.dev); $w.WriteElementString('maml', 'name', $ns.maml, $typeName); $w.WriteEndElement()
        $w.WriteElementString('dev', 'defaultValue', $ns.dev, $defaults[$Parameter.Name])
        $w.WriteEndElement()
    }

    $w.WriteStartElement('command', 'syntax', $ns.command)
    foreach ($set in $cmd.ParameterSets) {
        $w.WriteStartElement('command', 'syntaxItem', $ns.command)
        $w.WriteElementString('maml', 'name', $ns.maml, $cmd.Name)
        foreach ($sp in $set.Parameters | Where-Object { $_.Name -notin $common }) {
            Write-Parameter $cmd.Parameters[$sp.Name] $sp
        }
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'parameters', $ns.command)
    foreach ($p in $parameters) { Write-Parameter $p $null }
    $w.WriteEndElement()

    foreach ($pair in @(@('INPUTS', 'inputTypes', 'inputType'), @('OUTPUTS', 'returnValues', 'returnValue'))) {
        $section, $outer, $inner = $pair
        $w.WriteStartElement('command', $outer, $ns.command)
        if ($top.Contains($section)) {
            $types = Split-Sections $top[$section] '###'
            foreach ($t in $types.Keys) {
                $w.WriteStartElement('command', $inner, $ns.command)
                $w.WriteStartElement('dev', 'type', $ns.dev); $w.WriteElementString('maml', 'name', $ns.maml, $t); $w.WriteEndElement()
                $w.WriteStartElement('maml', 'description', $ns.maml); Write-Paras $w $types[$t]; $w.WriteEndElement()
                $w.WriteEndElement()
            }
        }
        $w.WriteEndElement()
    }

    if ($top.Contains('NOTES') -and $top['NOTES']) {
        $w.WriteStartElement('maml', 'alertSet', $ns.maml)
        $w.WriteStartElement('maml', 'alert', $ns.maml); Write-Paras $w $top['NOTES']; $w.WriteEndElement()
        $w.WriteEndElement()
    }

    $w.WriteStartElement('command', 'examples', $ns.command)
    foreach ($title in $examples.Keys) {
        $body = $examples[$title]
        $m = [regex]::Match($body, '(?s)```(?:powershell|pwsh|ps1)?\s*\r?\n(.*?)\r?\n```')
        if (-not $m.Success) { throw "$page example '$title' has no code block." }
        $remarks = $body.Substring($m.Index + $m.Length).Trim()
        $w.WriteStartElement('command', 'example', $ns.command)
        $w.WriteElementString('maml', 'title', $ns.maml, "-------------------------- $title --------------------------")
        $w.WriteElementString('dev', 'code', $ns.dev, $m.Groups[1].Value)
        $w.WriteStartElement('dev', 'remarks', $ns.dev); Write-Paras $w $remarks; $w.WriteEndElement()
        $w.WriteEndElement()
    }
    $w.WriteEndElement()

    $w.WriteStartElement('command', 'relatedLinks', $ns.command)
    if ($top.Contains('RELATED LINKS')) {
        foreach ($line in $top['RELATED LINKS'] -split "`r?`n" | Where-Object { $_ -match '\S' }) {
            $lm = [regex]::Match($line, '\[(.*?)\]\((.*?)\)')
            $w.WriteStartElement('maml', 'navigationLink', $ns.maml)
            $w.WriteElementString('maml', 'linkText', $ns.maml, ($lm.Success ? $lm.Groups[1].Value : $line.Trim()))
            $w.WriteElementString('maml', 'uri', $ns.maml, ($lm.Success ? $lm.Groups[2].Value : ''))
            $w.WriteEndElement()
        }
    }
    $w.WriteEndElement()
    $w.WriteEndElement()
}

$w.WriteEndElement()
$w.WriteEndDocument()
$w.Close()
Write-Host "Help: $helpFile ($($commands.Count) cmdlets)"
