BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $manifestPath = Get-ModuleUnderTest
    Import-Module $manifestPath -Force
    $script:cmdlets = @(Get-Command -Module CalicoBpf -CommandType Cmdlet | ForEach-Object { @{ Name = $_.Name } })
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $manifestPath = Get-ModuleUnderTest
    $moduleDir = Split-Path $manifestPath
    Import-Module $manifestPath -Force
    $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
}

Describe 'The module manifest and layout' {
    It 'is a valid manifest for PowerShell 7.4+ Core' {
        $m = Test-ModuleManifest $manifestPath
        $m.PowerShellVersion | Should -Be ([version]'7.4')
        $m.CompatiblePSEditions | Should -Be @('Core')
        $m.RootModule | Should -Be 'CalicoBpf.dll'
    }

    It 'exports exactly the cmdlets its manifest lists' {
        $listed = (Import-PowerShellDataFile $manifestPath).CmdletsToExport | Sort-Object
        $listed | Should -Not -Contain '*'
        (Get-Command -Module CalicoBpf).Name | Sort-Object | Should -Be $listed
    }

    It 'keeps the engine and third-party assemblies in lib/ and ships no PowerShell assembly' {
        (Get-ChildItem $moduleDir -Filter *.dll).Name | Should -Be @('CalicoBpf.dll')
        $lib = (Get-ChildItem (Join-Path $moduleDir 'lib') -Filter *.dll).Name
        $lib | Should -Contain 'CalicoBpf.Core.dll'
        $lib | Should -Contain 'CalicoBpf.Adapters.dll'
        $lib | Should -Contain 'YamlDotNet.dll'
        Get-ChildItem $moduleDir -Recurse -Filter 'System.Management.Automation.dll' | Should -BeNullOrEmpty
    }

    It 'ships no test support: no CalicoBpf.Simulation assembly, no type in that namespace' {
        # Read from each file's metadata, not from what is loaded: an assembly the module never loads counts too.
        $dlls = @(Get-ChildItem $moduleDir -Recurse -Filter *.dll)
        $dlls.Name | Should -Not -Contain 'CalicoBpf.Simulation.dll'
        $namespaces = foreach ($dll in $dlls) {
            $pe = [System.Reflection.PortableExecutable.PEReader]::new([IO.File]::OpenRead($dll.FullName))
            try {
                $md = [System.Reflection.Metadata.PEReaderExtensions]::GetMetadataReader($pe)
                foreach ($t in $md.TypeDefinitions) { $md.GetString($md.GetTypeDefinition($t).Namespace) }
            } finally { $pe.Dispose() }
        }
        $namespaces | Should -Contain 'CalicoBpf.Maps' -Because 'the engine''s own namespaces are read, so an empty result proves nothing'
        @($namespaces | Where-Object { $_ -like 'CalicoBpf.Simulation*' }) | Should -BeNullOrEmpty
    }

    It 'makes its types usable by name right after import' {
        [CalicoBpf.TcpState]::Established | Should -Be 'Established'
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext([CalicoBpf.ConntrackEntry].Assembly).Name | Should -Be 'Default'
    }
}

Describe '<Name>' -ForEach $cmdlets {
    BeforeAll {
        $command = Get-Command $Name
        $help = Get-Help $Name -Full
    }

    It 'declares its output type and has a default view for it' {
        $command.OutputType.Type | Should -Not -BeNullOrEmpty
        # [object]: a cmdlet that writes what its script block writes (Use-FelixBpfDebugLog), and those
        # types bring their views; a primitive (Test-CalicoEbpf -Quiet's [bool]) or text (Export-BpfMetric's
        # exposition) needs none.
        foreach ($t in $command.OutputType.Type | Where-Object { $_ -ne [void] -and $_ -ne [object] -and $_ -ne [string] -and -not $_.IsPrimitive }) {
            Get-FormatData -TypeName $t.FullName | Should -Not -BeNullOrEmpty -Because "$($t.FullName) needs a default view"
        }
    }

    It 'has a synopsis and a description' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis | Should -Not -Match "^\s*$Name\s*\["   # not the syntax PowerShell makes up without help
        ($help.Description.Text -join "`n") | Should -Match '\w{4,}'
    }

    It 'describes every parameter' {
        foreach ($p in $command.Parameters.Keys | Where-Object { $_ -notin $common }) {
            $doc = $help.Parameters.Parameter | Where-Object Name -eq $p
            ($doc.Description.Text -join ' ') | Should -Match '\w{4,}' -Because "-$p needs help"
        }
    }

    It 'sends Get-Help -Online to its help page in the project' {
        $uri = "https://github.com/calicobpf/CalicoBpf/blob/main/en-US/$Name.md"
        $command.HelpUri | Should -Be $uri
        Join-Path $PSScriptRoot "../../en-US/$Name.md" | Should -Exist
        (Get-Content (Join-Path $PSScriptRoot "../../en-US/$Name.md") -TotalCount 5) | Should -Contain "online version: $uri"
    }

    It 'has two or more examples with code, shown by Get-Help -Examples' {
        $examples = @($help.Examples.Example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($e in $examples) { $e.Code | Should -Match $Name }
        (Get-Help $Name -Examples | Out-String) | Should -Match ([regex]::Escape($examples[0].Code.Split("`n")[0]))
    }
}

Describe 'about_CalicoBpf' {
    It 'is installed as a help topic' {
        (Get-Help about_CalicoBpf | Out-String) | Should -Match 'Get-BpfConntrack'
    }

    It 'names every cmdlet of the module, and no file it does not ship' {
        $text = Get-Help about_CalicoBpf | Out-String
        foreach ($c in Get-Command -Module CalicoBpf) { $text | Should -Match "\b$([regex]::Escape($c.Name))\b" -Because "about_CalicoBpf lists $($c.Name)" }
        # A path of the project (docs/...) comes with its address: the module ships no docs folder.
        foreach ($m in [regex]::Matches($text, '(?<![/\w])docs/\S+')) { $text.Substring($m.Index + $m.Length, 3) | Should -Match '^\s*\(?h' -Because "$($m.Value) is not in the module: give its URL" }
    }
}
