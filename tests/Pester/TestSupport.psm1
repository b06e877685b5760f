# Shared by the Pester suites: the module under test, a private bpffs per suite, kernel requirements.
Set-StrictMode -Version Latest

function Get-ModuleUnderTest {
    if ($env:CALICOBPF_MODULE) { return $env:CALICOBPF_MODULE }
    return (Join-Path $PSScriptRoot '../../out/CalicoBpf/CalicoBpf.psd1')
}

function Test-KernelAvailable {
    # Tests that need the real kernel as root skip locally when they cannot have it; with CI=true they fail.
    $reason = if (-not $IsLinux) { 'not Linux' } elseif ((id -u) -ne '0') { 'not root' } else { $null }
    if ($reason -and $env:CI -eq 'true') { throw "These tests need the real kernel as root, and CI=true forbids skipping them ($reason)." }
    return -not $reason
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

Export-ModuleMember -Function *
