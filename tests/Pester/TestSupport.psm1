# Shared by the Pester suites: the module under test, a private bpffs per suite, kernel requirements.
# Each test file imports it in BeforeDiscovery (for its -Skip conditions); it stays loaded for the run.
Set-StrictMode -Version Latest

function Get-ModuleUnderTest {
    if ($env:CALICOBPF_MODULE) { return $env:CALICOBPF_MODULE }
    return (Join-Path $PSScriptRoot '../../out/CalicoBpf/CalicoBpf.psd1')
}

function Get-SimulationPath {
    # The simulator (tests/CalicoBpf.Simulation: real Calico maps seeded from a node scenario) is test
    # support, not part of the module; build.ps1 test builds it with the test cluster.
    if ($env:CALICOBPF_SIMULATION) { return $env:CALICOBPF_SIMULATION }
    return (Join-Path $PSScriptRoot '../CalicoBpf.Simulation/bin/Release/net8.0/CalicoBpf.Simulation.dll')
}

function Import-ModuleUnderTest {
    # The module under test into the session (-Force: this build, not one loaded before), and with
    # -Simulation the simulator after it; -PassThru gives the manifest's path, for child processes.
    param([switch] $Simulation, [switch] $PassThru)
    $path = Get-ModuleUnderTest
    Import-Module $path -Force -Global
    if ($Simulation) { Import-Simulation }
    if ($PassThru) { $path }
}

function Import-Simulation {
    # After Import-Module: the simulator's reference to CalicoBpf.Core binds to the engine the module loaded.
    $path = Get-SimulationPath
    if (-not (Test-Path $path)) { throw "The simulator is not built ($path): run build.ps1 test." }
    Add-Type -Path $path
}

function Test-KernelAvailable {
    # Tests that need the real kernel as root skip locally when they cannot have it; with CI=true they fail.
    $reason = if (-not $IsLinux) { 'not Linux' } elseif ((id -u) -ne '0') { 'not root' } else { $null }
    if ($reason -and $env:CI -eq 'true') { throw "These tests need the real kernel as root, and CI=true forbids skipping them ($reason)." }
    return -not $reason
}

function Get-Bpftool75Directory {
    # bpftool 7.5 as calico-node ships it from v3.30 (the machine's may predate TCX and netkit), put in a
    # directory of its own by tests/tools/get-bpftool75.sh; CALICOBPF_BPFTOOL75 names another. Null when
    # missing (callers skip); with CI=true missing is an error.
    $path = if ($env:CALICOBPF_BPFTOOL75) { $env:CALICOBPF_BPFTOOL75 } else { '/var/cache/calicobpf/bpftool-7.5/bpftool' }
    if (Test-Path $path) { return (Split-Path $path) }
    if ($env:CI -eq 'true') { throw "bpftool 7.5 is needed at $path (.ci/run puts it there with tests/tools/get-bpftool75.sh)." }
    return $null
}

function New-TestBpfFs {
    # A private bpffs mount with a tc/globals directory; Remove-TestBpfFs unmounts it and everything pinned there.
    $root = Join-Path ([IO.Path]::GetTempPath()) ('calicobpf-pester-' + [guid]::NewGuid().ToString('N').Substring(0, 10))
    $null = New-Item -ItemType Directory $root
    & mount -t bpf bpf $root
    if ($LASTEXITCODE) { Remove-Item $root; throw "mount -t bpf $root failed." }
    $pins = Join-Path $root 'tc/globals'
    $null = New-Item -ItemType Directory $pins
    return [pscustomobject]@{ Root = $root; PinPath = $pins }
}

function Remove-TestBpfFs($Fs) {
    if ($null -eq $Fs) { return }
    & umount -l $Fs.Root 2>$null
    Remove-Item -Recurse -Force $Fs.Root -ErrorAction SilentlyContinue
}

function Get-PwshPath { Join-Path $PSHOME 'pwsh' }

function Invoke-AsNobody([string] $Script) {
    # Runs $Script after importing the module under test, as the unprivileged user 65534, and returns
    # its output (2>&1); $null when setpriv (util-linux) is missing. pwsh and the module may sit under
    # /root, so that user gets its own readable copies, removed afterwards.
    $setpriv = Get-Command setpriv -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if (-not $setpriv) { return $null }
    $copy = Join-Path ([IO.Path]::GetTempPath()) "calicobpf-nobody-$PID-$([guid]::NewGuid().ToString('n').Substring(0, 8))"
    try {
        $null = New-Item -ItemType Directory $copy
        Copy-Item -Recurse $PSHOME (Join-Path $copy 'pwsh')
        Copy-Item -Recurse (Split-Path (Get-ModuleUnderTest)) (Join-Path $copy 'CalicoBpf')
        & chmod -R a+rX $copy
        $env:HOME, $home0 = $copy, $env:HOME
        try {
            & $setpriv.Source --reuid=65534 --regid=65534 --clear-groups (Join-Path $copy 'pwsh/pwsh') -NoProfile -NonInteractive -Command "Import-Module '$copy/CalicoBpf/$(Split-Path -Leaf (Get-ModuleUnderTest))'; $Script" 2>&1
        } finally { $env:HOME = $home0 }
    } finally { Remove-Item -Recurse -Force $copy -ErrorAction SilentlyContinue }
}

function Get-TestCgroupRoot {
    # Where the cgroup v2 hierarchy is mounted; null when it is not (callers skip, or fail with CI=true).
    # The module must be imported: Core finds it as Get-BpfConnectTimeProgram does.
    [CalicoBpf.Maps.ConnectTime]::Cgroup2Mount()
}

function Remove-TestCgroup([string] $Cgroup, [string] $Links) {
    # Unpinning the links detaches their programs; then the cgroup can go (rmdir: a cgroup directory
    # is never "empty" to Remove-Item).
    Get-ChildItem $Links -ErrorAction SilentlyContinue | Remove-Item -Force
    if (Test-Path $Cgroup) { [IO.Directory]::Delete($Cgroup) }
}

function Start-TestCluster([string] $Scenario, [string] $Directory) {
    # Starts the test cluster as its own process; Stop-TestCluster closes its stdin, and it removes
    # every namespace, mount and map it created before it exits.
    $null = New-Item -ItemType Directory -Force $Directory
    $dll = if ($env:CALICOBPF_TESTCLUSTER) { $env:CALICOBPF_TESTCLUSTER } else { Join-Path $PSScriptRoot '../CalicoBpf.TestCluster/bin/Release/net8.0/CalicoBpf.TestCluster.dll' }
    if (-not (Test-Path $dll)) { throw "The test cluster is not built ($dll): run build.ps1 test." }
    $kubeconfig = Join-Path $Directory 'kubeconfig'
    $psi = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
    foreach ($a in @($dll, '--scenario', $Scenario, '--kubeconfig', $kubeconfig)) { $psi.ArgumentList.Add($a) }
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.UseShellExecute = $false
    $process = [System.Diagnostics.Process]::Start($psi)
    $line = $process.StandardOutput.ReadLine()
    if ($line -notlike 'ready *') { $process.WaitForExit(5000) | Out-Null; if (-not $process.HasExited) { $process.Kill() }; throw "The test cluster did not start with $Scenario (exit code $(if ($process.HasExited) { $process.ExitCode }); its message is on stderr, above): $line" }
    $readonly = Join-Path $Directory 'kubeconfig-readonly'
    (Get-Content -Raw $kubeconfig) -replace 'token: admin-token', 'token: readonly-token' | Set-Content $readonly
    [pscustomobject]@{ Process = $process; Url = $line.Substring(6); Kubeconfig = $kubeconfig; ReadonlyKubeconfig = $readonly; RunId = '{0:x}' -f $process.Id }
}

function Stop-TestCluster($Cluster) {
    if ($null -eq $Cluster) { return }
    $Cluster.Process.StandardInput.Close()
    if (-not $Cluster.Process.WaitForExit(60000)) { $Cluster.Process.Kill() }
}

function Start-ScenarioCluster([string] $Name, [string] $Directory) {
    # The test cluster of tests/Pester/NAME.yaml, made the default -Kubeconfig of every cmdlet; null
    # where the kernel cannot be had (the tests are skipped then; with CI=true that is an error).
    if (-not (Test-KernelAvailable)) { return $null }
    $c = Start-TestCluster -Scenario (Join-Path $PSScriptRoot "$Name.yaml") -Directory (Join-Path $Directory $Name)
    $global:PSDefaultParameterValues['*:Kubeconfig'] = $c.Kubeconfig
    $c
}

function Stop-ScenarioCluster($Cluster) {
    $global:PSDefaultParameterValues.Remove('*:Kubeconfig')
    [CalicoBpf.Cluster.ClusterConnections]::Reset()
    Stop-TestCluster $Cluster
}

function Get-ClusterWrites($Cluster) {
    # Writes the test cluster has stored (dry runs excluded): how tests see that -WhatIf sent nothing.
    (Invoke-RestMethod -SkipCertificateCheck -Uri "$($Cluster.Url)/debug/calicobpf/writes" -Headers @{ Authorization = 'Bearer admin-token' }).writes
}

function Get-ClusterActiveExecs($Cluster) {
    # Exec sessions the test cluster has open right now.
    (Invoke-RestMethod -SkipCertificateCheck -Uri "$($Cluster.Url)/debug/calicobpf/writes" -Headers @{ Authorization = 'Bearer admin-token' }).activeExecs
}

function Get-ClusterLongestExecTarget($Cluster) {
    # The longest exec URL (path and query) the test cluster has served: how tests see what travelled in URLs.
    (Invoke-RestMethod -SkipCertificateCheck -Uri "$($Cluster.Url)/debug/calicobpf/writes" -Headers @{ Authorization = 'Bearer admin-token' }).longestExecTarget
}

function Add-TraceMark([string] $Text, [int] $Count = 0) {
    # A line in the kernel's one trace buffer (with -Count, that many: "$Text-1" to "$Text-$Count", one
    # write each), written from the host: through its tracefs where one is mounted (a second tracefs
    # mount on /sys/kernel/tracing fails as busy), else through a tracefs of its own mount namespace, so
    # that the host's mounts stay as they were.
    $write = if ($Count -gt 0) { "for i in `$(seq $Count); do echo $Text-`$i; done" } else { "echo $Text" }
    $mounted = Get-Content /proc/self/mounts | ForEach-Object { , ($_ -split ' ') } | Where-Object { $_[2] -eq 'tracefs' } | Select-Object -First 1
    if ($mounted) {
        & sh -c "$write > '$($mounted[1] -replace '\\040', ' ')/trace_marker'"
    }
    else {
        & unshare --mount --propagation private sh -c "mount -t tracefs nodev /sys/kernel/tracing && { $write; } > /sys/kernel/tracing/trace_marker"
    }
    if ($LASTEXITCODE) { throw "Writing '$Text' to the trace buffer failed (exit code $LASTEXITCODE)." }
}

function Get-NodeProcess($Cluster, [string] $Node) {
    # The command lines running in a node's calico-node container, its PID 1 aside: what an exec left behind.
    @((Invoke-RestMethod -SkipCertificateCheck -Uri "$($Cluster.Url)/debug/calicobpf/nodes/$Node/processes" -Headers @{ Authorization = 'Bearer admin-token' }).processes)
}

function Wait-NodeIdle($Cluster, [string] $Node, [int] $Seconds = 10) {
    # The node's container once nothing runs in it, or what still runs after $Seconds.
    $deadline = [DateTime]::UtcNow.AddSeconds($Seconds)
    do {
        $left = @(Get-NodeProcess $Cluster $Node)
        if ($left.Count -eq 0) { return ,@() }
        Start-Sleep -Milliseconds 100
    } while ([DateTime]::UtcNow -lt $deadline)
    ,$left
}

function Get-CalicoBpfThread {
    # The threads of this process that CalicoBpf started and named (cbpf-node NODE: a node's worker in a
    # fan-out; cbpf-exec NODE: an exec session's stderr reader), as the kernel lists them: none may be
    # left once a cmdlet has ended, however it ended.
    foreach ($task in Get-ChildItem "/proc/$PID/task" -Directory) {
        $comm = (Get-Content -Raw -ErrorAction SilentlyContinue (Join-Path $task.FullName 'comm'))
        if ($comm -and $comm.StartsWith('cbpf-')) { $comm.Trim() }
    }
}

function Get-PinHash([string] $PinPath) {
    # Every entry of every Calico map pinned there, key and value bytes, hashed: any change to any map shows.
    $sb = [System.Text.StringBuilder]::new()
    foreach ($pin in Get-ChildItem $PinPath -Filter 'cali_*' | Sort-Object Name) {
        $map = [CalicoBpf.Interop.BpfMap]::OpenPinned($pin.FullName, $false)
        try {
            if (-not [CalicoBpf.BpfMapTypeExtensions]::IsIterable($map.Descriptor.Type)) { continue }
            $rows = foreach ($b in $map.ReadEntries(1024, 'Auto', [Threading.CancellationToken]::None)) {
                for ($i = 0; $i -lt $b.Count; $i++) {
                    [Convert]::ToHexString($b.Keys, $i * $b.KeySize, $b.KeySize) + '=' + [Convert]::ToHexString($b.Values, $i * $b.ValueStride, $b.ValueStride)
                }
            }
            $null = $sb.Append($pin.Name).Append(':').AppendJoin(';', @($rows | Sort-Object)).Append("`n")
        } finally { $map.Dispose() }
    }
    [Convert]::ToHexString([Security.Cryptography.SHA256]::HashData([Text.Encoding]::UTF8.GetBytes($sb.ToString())))
}

Export-ModuleMember -Function *
