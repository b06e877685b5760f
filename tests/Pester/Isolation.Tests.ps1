BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $manifestPath = Get-ModuleUnderTest
    $pwsh = Get-PwshPath
    $cache = if ($env:NUGET_PACKAGES) { $env:NUGET_PACKAGES } else { Join-Path ([Environment]::GetFolderPath('UserProfile')) '.nuget/packages' }
}

Describe 'Third-party assemblies load in the module''s private context' {
    It 'imports and parses YAML after another module loaded YamlDotNet <Version>' -ForEach @(
        @{ Version = '11.2.1'; Tfm = 'netstandard2.1'; Loaded = '11.0.0.0' }
        @{ Version = '16.3.0'; Tfm = 'net8.0'; Loaded = '16.0.0.0' }
    ) {
        $other = Join-Path $cache "yamldotnet/$Version/lib/$Tfm/YamlDotNet.dll"
        $other | Should -Exist -Because 'build.ps1 test restores tests/tools/Tools.csproj'
        $script = @"
`$ErrorActionPreference = 'Stop'
Add-Type -Path '$other'
Import-Module '$manifestPath'
`$ours = [CalicoBpf.Isolation.DependencyLoadContext]::Yaml
`$s = `$ours.ToJsonDocuments("node: n7``nconntrack:``n  tcp: 2")[0] | ConvertFrom-Json
`$loaded = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'YamlDotNet' } |
    ForEach-Object { '{0}@{1}' -f `$_.GetName().Version, [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$_).Name }
"node=`$(`$s.node);tcp=`$(`$s.conntrack.tcp);ours=`$(`$ours.Version);loaded=`$((`$loaded | Sort-Object) -join ',')"
"@
        $out = & $pwsh -NoProfile -NonInteractive -Command $script 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($out | Out-String)
        $line = $out | Select-Object -Last 1
        $line | Should -Match 'node=n7;tcp=2;ours=18\.0\.0\.0'
        $line | Should -Match "$([regex]::Escape($Loaded))@Default"
        $line | Should -Match '18\.0\.0\.0@CalicoBpf'
    }
}
