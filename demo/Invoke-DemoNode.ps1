#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Runs inside the demo node's network namespace: seeds the maps, then runs the main job.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $Simulation,
    [Parameter(Mandatory)] [string] $Scenario,
    [Parameter(Mandatory)] [string] $PinPath
)

$ErrorActionPreference = 'Stop'
Import-Module $ModulePath
# After the module, so that the simulator binds to the engine the module loaded.
Add-Type -Path $Simulation

$node = [CalicoBpf.Simulation.NodeScenario]::Load($Scenario)
# Calico names a node after NODENAME (else the host name); so does CalicoBpf.
$env:NODENAME = $node.Node
if ([Console]::IsOutputRedirected) { $PSStyle.OutputRendering = 'PlainText' }
$links = [System.Collections.Generic.Dictionary[string, int]]::new()
foreach ($l in [CalicoBpf.Interop.NetLink]::ListLinks().Values) { $links[$l.Name] = $l.IfIndex }
$dataplane = [CalicoBpf.Simulation.SimulatedDataplane]::Claim($PinPath)
$policyDebug = Join-Path (Split-Path (Split-Path (Split-Path $PinPath))) 'policy'
try {
    $node.Seed($dataplane, $links, $policyDebug)
}
finally {
    $dataplane.Dispose()
}
$PSDefaultParameterValues['*-Bpf*:PinPath'] = $PinPath
$PSDefaultParameterValues['Get-BpfPolicy:PolicyDebugPath'] = $policyDebug
$PSDefaultParameterValues['Test-BpfFlow:PolicyDebugPath'] = $policyDebug

function Show([string] $Title, [scriptblock] $Command) {
    Write-Host ''
    Write-Host "PS> $($Command.ToString().Trim())" -ForegroundColor Cyan
    & $Command | Out-String -Width 120 -Stream | Where-Object { $_.Trim() } | Write-Host
}

Write-Host "Simulated Calico eBPF node '$($node.Node)': real BPF maps pinned in $PinPath, interfaces in network namespace $(ip netns identify $PID)."
Show 'maps' { Get-BpfMap | Where-Object Entries -gt 0 }
Show 'how full' { Get-BpfMap cali_v4_ct* | Select-Object Name, Entries, MaxEntries, FillPercent }
Show 'drops' { Get-BpfCounter | Where-Object { $_.Category -eq 'Dropped' -and ($_.Ingress -gt 0 -or $_.Egress -gt 0) } }
Show 'drops by interface' { Get-BpfCounter -Interface eth0 | Where-Object Category -in 'Dropped', 'Total' }
Show 'conntrack at a glance' { Get-BpfConntrackStatistic }
Show 'conntrack by state' { Get-BpfConntrack -Protocol TCP | Group-Object State -NoElement | Sort-Object Count -Descending }
Show 'service connections' { Get-BpfConntrack -Type NatReverse | Sort-Object AgeValue | Select-Object -First 6 }
Show 'as JSON for a ticket' { Get-BpfConntrack -Type NatReverse -Port 8080 | Sort-Object AgeValue | Select-Object -First 2 SourceAddress, SourcePort, DestinationAddress, ServiceAddress, State, Age | ConvertTo-Json }
# 16m lies in the widest gap between the scenario's ages (930 s to 983 s): the count holds however long the demo takes to get here.
Show 'long-idle flows' { Get-BpfConntrack -OlderThan 16m | Group-Object Protocol -NoElement | Sort-Object Name }
Show 'services' { Get-BpfNat }
Show 'a service in detail' { Get-BpfNat 10.96.0.10 -Protocol Udp | Select-Object -ExpandProperty Backends }
Show 'session affinity' { Get-BpfNatAffinity }
Show 'maglev' { Get-BpfNatMaglev -ServiceId 9 | Group-Object { "$($_.BackendAddress):$($_.BackendPort)" } -NoElement }
Show 'where does traffic to a pod go' { Get-BpfRoute -Address 10.65.2.17 }
Show 'routes' { Get-BpfRoute }
Show 'IP sets' { Get-BpfIpSet }
Show 'tunnel neighbours' { Get-BpfArp | Sort-Object Interface, Address }
Show 'interfaces Felix manages' { Get-BpfInterface }
Show 'policy hits' { Get-BpfPolicy cali7f3a1b2c9d0 }
Show 'qdisc drops' { Get-BpfQdiscStatistic -Kind clsact }
Show 'why is this connection refused' { Test-BpfFlow 10.65.0.8 10.65.2.17:23 }
Show 'can this pod reach these services' { '10.96.31.7:80', '10.96.90.3:9090', '10.65.0.70:80' | ForEach-Object { Test-BpfFlow 10.65.0.8 $_ } | Format-Table -View Summary }
Show 'the stages of a prediction' { Test-BpfFlow 10.65.0.8 10.96.0.10:53 -Protocol UDP | Select-Object -ExpandProperty Stages }
Show 'can a client outside the cluster reach a node port' { Test-BpfFlow 192.168.4.20 172.18.0.10:31443 -Interface eth0 }
Show 'remove what a test left behind' { Get-BpfConntrack -Port 6379 -Type NatReverse | Sort-Object AgeValue | Select-Object -First 3 | Remove-BpfConntrack -WhatIf }
Show 'and really remove them all' { Get-BpfConntrack -Port 6379 -Type NatReverse | Remove-BpfConntrack -Confirm:$false }
Show 'reset counters before a reproduction' { Clear-BpfCounter -Interface eth0 -WhatIf }
Show 'clean stale neighbours' { Clear-BpfArp -WhatIf }
