#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The README's demo: a simulated Calico eBPF node on this machine, and the main job run against it.
.DESCRIPTION
    Creates a network namespace with a node's interfaces (eth0, a workload veth, vxlan.calico) and
    a private bpffs, seeds real BPF maps with Calico's exact names, types and sizes from
    demo-node.yaml (conntrack of every type and protocol, counters with drops), then runs
    Get-BpfMap, the dropped counters and conntrack by state inside that namespace. Everything it
    creates is removed at the end, also on failure. Needs root (real maps, real namespaces).
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ModulePath,
    # The simulator that seeds the maps (tests/CalicoBpf.Simulation, built by build.ps1 demo): test support, not part of the module.
    [Parameter(Mandatory)] [string] $Simulation,
    [string] $Scenario = (Join-Path $PSScriptRoot 'demo-node.yaml')
)

$ErrorActionPreference = 'Stop'
if (-not $IsLinux) { throw 'The demo builds a real eBPF dataplane and needs Linux.' }
if ((id -u) -ne '0') { throw 'The demo creates BPF maps and a network namespace: run it as root (sudo).' }

$ns = "calicobpf-demo-$PID"
$work = Join-Path ([IO.Path]::GetTempPath()) $ns
$bpffs = Join-Path $work 'bpffs'
$pwsh = Join-Path $PSHOME 'pwsh'
try {
    & ip netns add $ns
    if ($LASTEXITCODE) { throw "ip netns add $ns failed." }
    & ip -n $ns link add eth0 type veth peer name eth1
    & ip -n $ns link add cali7f3a1b2c9d0 type veth peer name caliab12cd34ef5
    & ip -n $ns link add vxlan.calico type vxlan id 4096 dstport 4789
    foreach ($l in 'lo', 'eth0', 'eth1', 'cali7f3a1b2c9d0', 'caliab12cd34ef5', 'vxlan.calico') { & ip -n $ns link set $l up }
    # Felix gives every interface it manages a clsact qdisc for its TC programs.
    foreach ($l in 'eth0', 'cali7f3a1b2c9d0', 'vxlan.calico') {
        & tc -n $ns qdisc add dev $l clsact
        if ($LASTEXITCODE) { throw "tc qdisc add dev $l clsact failed." }
    }
    $null = New-Item -ItemType Directory -Force $bpffs
    & mount -t bpf bpf $bpffs
    if ($LASTEXITCODE) { throw "mount -t bpf $bpffs failed." }

    # The node runs in a time namespace whose monotonic clock is a day ahead, as a node up for a day:
    # the scenario's ages (idle flows up to half an hour) are written and read as they are, whatever
    # this machine's uptime (on one booted minutes ago no entry could be older than that). Only the
    # demo's own process sees the offset: it seeds the maps and reads them; no BPF program runs here.
    $clock = @()
    if (Get-Command unshare -ErrorAction SilentlyContinue) { $clock = @('unshare', '--time', '--monotonic', '86400', '--boottime', '86400', '--fork') }
    else { Write-Warning 'unshare (util-linux) is not installed: the demo node''s ages are capped at this machine''s uptime.' }
    & ip netns exec $ns @clock $pwsh -NoProfile -NonInteractive -File (Join-Path $PSScriptRoot 'Invoke-DemoNode.ps1') `
        -ModulePath $ModulePath -Simulation $Simulation -Scenario $Scenario -PinPath (Join-Path $bpffs 'tc/globals')
    if ($LASTEXITCODE) { throw "The demo node failed (exit code $LASTEXITCODE)." }
}
finally {
    if (Test-Path $bpffs) { & umount $bpffs 2>$null }
    if (Test-Path $work) { Remove-Item -Recurse -Force $work }
    & ip netns del $ns 2>$null
}
