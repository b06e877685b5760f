BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $package = $env:CALICOBPF_PACKAGE
    if (-not $package) { $package = Get-ChildItem (Join-Path $PSScriptRoot '../../out') -Filter 'CalicoBpf.*.nupkg' | Select-Object -First 1 -ExpandProperty FullName }
}

Describe 'The package' {
    It 'is saved by PSResourceGet from a local repository and imports with help' {
        $package | Should -Exist -Because 'build.ps1 test runs the package task first'
        $repo = Join-Path $TestDrive 'repo'
        $dest = Join-Path $TestDrive 'modules'
        $null = New-Item -ItemType Directory $repo, $dest
        Copy-Item $package $repo
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
