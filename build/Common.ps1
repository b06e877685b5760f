# Helpers shared by build.ps1 and the scripts it runs (fuzz/Invoke-Fuzz.ps1, bench/*.ps1): dot-source it.
# Directory.Build.props is the one place for the module version and the target framework.

function Get-BuildProperty([string] $Name) {
    $props = [xml](Get-Content -Raw (Join-Path $PSScriptRoot '../Directory.Build.props'))
    $value = ($props.Project.PropertyGroup | Where-Object { $_[$Name] } | Select-Object -First 1).$Name
    if (-not $value) { throw "Directory.Build.props sets no $Name." }
    return $value
}

# The folder a project's build writes to: PROJECTDIR/bin/CONFIGURATION/TARGETFRAMEWORK.
function Get-BuildOutput([string] $ProjectDirectory, [string] $Configuration = 'Release') {
    return Join-Path $ProjectDirectory "bin/$Configuration/$(Get-BuildProperty 'TargetFramework')"
}

function Invoke-Native {
    param([string] $File, [string[]] $Arguments, [switch] $AllowFailure)
    & $File @Arguments
    if ($LASTEXITCODE -ne 0 -and -not $AllowFailure) {
        throw "$File $($Arguments -join ' ') failed with exit code $LASTEXITCODE."
    }
}
