BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $package = $env:CALICOBPF_PACKAGE
    if (-not $package) { $package = Get-ChildItem (Join-Path $PSScriptRoot '../../out') -Filter 'CalicoBpf.*.nupkg' | Select-Object -First 1 -ExpandProperty FullName }

    function New-LocalRepository([string] $Name) {
        # A folder repository holding the package build.ps1 wrote.
        $package | Should -Exist -Because 'build.ps1 test runs the package task first'
        $repo = Join-Path $TestDrive $Name
        $null = New-Item -ItemType Directory $repo
        Copy-Item $package $repo
        $repo
    }
}

Describe 'The package' {
    It 'is installed by Install-PSResource on a fresh profile and imports by name with help' {
        # A fresh machine as far as PowerShell can tell: an empty HOME (so no registered repository,
        # no user modules), the package in a local repository, Install-PSResource, Import-Module by name.
        $repo = New-LocalRepository install-repo
        $home2 = Join-Path $TestDrive 'fresh-home'
        $null = New-Item -ItemType Directory $home2
        $script = @"
Register-PSResourceRepository -Name local -Uri '$repo' -Trusted
Install-PSResource -Name CalicoBpf -Repository local -Scope CurrentUser -TrustRepository -SkipDependencyCheck
Import-Module CalicoBpf
(Get-Module CalicoBpf).ModuleBase
(Get-Command -Module CalicoBpf).Count
(Get-Help Test-CalicoEbpf).Synopsis
"@
        $psi = [Diagnostics.ProcessStartInfo]::new((Get-PwshPath))
        foreach ($a in '-NoProfile', '-NonInteractive', '-Command', $script) { $psi.ArgumentList.Add($a) }
        $psi.Environment['HOME'] = $home2
        $psi.Environment.Remove('PSModulePath')
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        $p = [Diagnostics.Process]::Start($psi)
        $out = $p.StandardOutput.ReadToEnd() -split "`n" | Where-Object { $_.Trim() }
        $err = $p.StandardError.ReadToEnd()
        $p.WaitForExit()
        $p.ExitCode | Should -Be 0 -Because $err
        $out[0] | Should -BeLike "$home2*"
        $out[1] | Should -Be ([string](Import-PowerShellDataFile (Join-Path $PSScriptRoot '../../CalicoBpf.psd1')).CmdletsToExport.Count)
        $out[2] | Should -Match 'troubleshooting guide'
    }

    It 'is saved by PSResourceGet from a local repository and imports with help' {
        $repo = New-LocalRepository repo
        $dest = Join-Path $TestDrive 'modules'
        $null = New-Item -ItemType Directory $dest
        $name = "CalicoBpfTest$PID"
        Register-PSResourceRepository -Name $name -Uri $repo -Trusted
        try {
            Save-PSResource -Name CalicoBpf -Repository $name -Path $dest -TrustRepository -SkipDependencyCheck
        } finally {
            Unregister-PSResourceRepository -Name $name
        }
        $manifest = Get-ChildItem $dest -Recurse -Filter CalicoBpf.psd1 | Select-Object -First 1
        $manifest | Should -Not -BeNullOrEmpty
        Join-Path $manifest.DirectoryName 'lib/CalicoBpf.Core.dll' | Should -Exist
        Join-Path $manifest.DirectoryName 'en-US/CalicoBpf.dll-Help.xml' | Should -Exist
        $out = & (Get-PwshPath) -NoProfile -NonInteractive -Command "Import-Module '$($manifest.FullName)'; (Get-Command -Module CalicoBpf).Count; (Get-Help Get-BpfConntrack).Synopsis"
        $out[0] | Should -Be ([string](Import-PowerShellDataFile $manifest.FullName).CmdletsToExport.Count)
        $out[1] | Should -Match 'conntrack'
    }
}
