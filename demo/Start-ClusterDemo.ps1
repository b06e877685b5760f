#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The README's cluster demo: a small test cluster on this machine, and the main job run against
    every node through the Kubernetes API.
.DESCRIPTION
    Starts the test cluster of demo/cluster.yaml: a Kubernetes API server on 127.0.0.1 (TLS, tokens)
    over four simulated nodes that are real below the API (network namespaces, bpffs, real Calico
    maps; exec runs real bpftool, ip and tc inside them). node-a has drops, node-c has a broken BPF
    setup (Felix fell back), node-d runs no calico-node. Then runs the cmdlets with -Node *.
    Everything it creates is removed at the end. Needs root.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    [Parameter(Mandatory)] [string] $TestCluster
)

$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot '../tests/Pester/TestSupport.psm1') -Force
$env:CALICOBPF_TESTCLUSTER = $TestCluster
$work = Join-Path ([IO.Path]::GetTempPath()) "calicobpf-cluster-demo-$PID"
$null = New-Item -ItemType Directory -Force $work
$cluster = Start-TestCluster -Scenario (Join-Path $PSScriptRoot 'cluster.yaml') -Directory $work
try {
    Import-Module $ModulePath
    if ([Console]::IsOutputRedirected) { $PSStyle.OutputRendering = 'PlainText' }
    $PSDefaultParameterValues['*:Kubeconfig'] = $cluster.Kubeconfig
    function Show([scriptblock] $Command) {
        $ErrorActionPreference = 'Continue'   # a node that fails is one error; show it and go on
        Write-Host ''
        Write-Host "PS> $($Command.ToString().Trim())" -ForegroundColor Cyan
        & $Command 2>&1 | ForEach-Object { if ($_ -is [System.Management.Automation.ErrorRecord]) { "ERROR: $_" } else { $_ } } |
            Out-String -Width 160 -Stream | Where-Object { $_.Trim() } | Write-Host
    }

    Write-Host "Test cluster at $($cluster.Url) (kubeconfig $($cluster.Kubeconfig)): 4 nodes, Calico v3.30.7 installed by the operator."
    Show { Get-CalicoNode }
    Show { Get-BpfMap -Node * cali_v4_ct? | Sort-Object Node | Select-Object Node, Name, Entries, FillPercent }
    Show { Get-BpfCounter -Node * | Where-Object { $_.Category -eq 'Dropped' -and $_.Ingress -gt 0 } | Sort-Object Node, Interface, Name | Select-Object Node, Interface, Name, Ingress }
    Show { Get-BpfConntrack -Node * -Protocol Tcp | Group-Object Node, State -NoElement | Sort-Object Name }
    Show { Get-BpfConntrackStatistic -Node * | Sort-Object Node | Format-Table -View TcpState }
    Show { Get-BpfNat -Node node-a -Address 10.96.0.10 | Select-Object -ExpandProperty Backends }
    Show { Get-BpfConntrack -Node * -Namespace shop | Sort-Object Node, Type, Source, Destination }
    Show { Get-BpfNat -Node node-a -Resolve | Format-Table Frontend, Service, @{ n = 'Backends'; e = { $_.Backends.Pod -join ', ' } } }
    Show { Test-BpfFlow pod/shop/frontend-7d4b9c-x2k8p svc/shop/cart }
    Show { Get-FelixBpfConfig }
    Show { Get-FelixBpfConfig -Node node-a -Effective -Field bpfEnabled, bpfLogLevel, bpfExternalServiceMode, bpfKubeProxyIptablesCleanupEnabled }
    Show { Set-FelixBpfConfig -Node node-a -Clear bpfLogLevel -WhatIf }
    Show { Test-CalicoEbpf }
}
finally {
    Stop-TestCluster $cluster
    Remove-Item -Recurse -Force $work -ErrorAction SilentlyContinue
}
