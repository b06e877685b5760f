# Default views as a user reads them: every header is a property name (so Select-Object with what
# the table shows works), and every table of the demo cluster's objects fits 80 and 120 columns with
# no column dropped.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    Import-ModuleUnderTest
    [xml] $script:formats = Get-Content -Raw (Join-Path $PSScriptRoot '../../src/CalicoBpf/Formats/CalicoBpf.Format.ps1xml')

    # The table views: type name, and the labels of their columns.
    $script:tables = foreach ($v in $formats.Configuration.ViewDefinitions.View) {
        if (-not $v.TableControl) { continue }
        $items = @($v.TableControl.TableRowEntries.TableRowEntry.TableColumnItems.TableColumnItem)
        $headers = @($v.TableControl.TableHeaders.TableColumnHeader)
        $labels = for ($i = 0; $i -lt $items.Count; $i++) { if ($headers[$i].Label) { $headers[$i].Label } else { $items[$i].PropertyName } }
        [pscustomobject]@{ View = $v.Name; Type = @($v.ViewSelectedBy.TypeName)[0]; Labels = @($labels) }
    }
}

Describe 'Default views' {
    It 'every column header is a property of the type it shows (any case)' {
        foreach ($t in $tables) {
            $type = [CalicoBpf.ConntrackEntry].Assembly.GetType(($t.Type -replace '#.*$', ''))
            $type | Should -Not -BeNullOrEmpty -Because $t.View
            $names = @($type.GetProperties().Name)
            foreach ($label in $t.Labels) {
                $names | Should -Contain $label -Because "$($t.View) shows a column '$label', so Select-Object $label must give it"
            }
        }
    }

    It 'every output type holds only what ConvertTo-Json writes as JSON values: text, numbers, names, lists, objects of the module' {
        # ConvertTo-Json writes a property by its value's type: an IPAddress or a TimeSpan becomes an
        # object of its .NET fields, also after Select-Object. So addresses and durations are text, and
        # their typed values are hidden members (the next test); enums are written by name.
        $engine = [CalicoBpf.ConntrackEntry].Assembly
        $scalar = @([string], [bool], [byte], [sbyte], [int16], [uint16], [int], [uint32], [long], [uint64], [double], [datetime], [CalicoBpf.ValueMap], [CalicoBpf.ValueTree], [CalicoBpf.HexBytes])
        $seen = [System.Collections.Generic.HashSet[type]]::new()
        $queue = [System.Collections.Generic.Queue[type]]::new()
        foreach ($t in (Get-Command -Module CalicoBpf).OutputType.Type | Where-Object { $_.Assembly -eq $engine }) { $queue.Enqueue($t) }
        $queue.Count | Should -BeGreaterThan 15
        while ($queue.Count) {
            $t = $queue.Dequeue()
            if (-not $seen.Add($t)) { continue }
            foreach ($p in $t.GetProperties([System.Reflection.BindingFlags]'Public,Instance')) {
                $type = if ([Nullable]::GetUnderlyingType($p.PropertyType)) { [Nullable]::GetUnderlyingType($p.PropertyType) } else { $p.PropertyType }
                if ($type.IsGenericType -and $type.GetGenericTypeDefinition() -eq [CalicoBpf.ValueList`1]) { $type = $type.GetGenericArguments()[0]; if ($type -eq [object]) { continue } }
                if ($scalar -contains $type -or ($type.IsEnum -and $type.Assembly -eq $engine)) { continue }
                # One of the module's objects whose type its family decides (StateDifference.Reference): written by its value's type.
                if ($type -eq [object] -and $t -eq [CalicoBpf.StateDifference]) { continue }
                $type.Assembly | Should -Be $engine -Because "$($t.Name).$($p.Name) is a $($type.FullName): ConvertTo-Json would write its .NET fields"
                $type.IsClass | Should -BeTrue -Because "$($t.Name).$($p.Name) is a $($type.FullName)"
                $queue.Enqueue($type)
            }
        }
    }

    It 'every typed value behind a text property is a hidden member of its type: SourceAddressValue, AgeValue' {
        $engine = [CalicoBpf.ConntrackEntry].Assembly
        $flags = [System.Reflection.BindingFlags]'NonPublic,Instance'
        $typed = foreach ($t in $engine.GetExportedTypes()) {
            foreach ($p in $t.GetProperties($flags)) {
                if ($p.Name -like '*Value' -and $p.GetMethod.IsAssembly -and $t.GetProperty($p.Name.Substring(0, $p.Name.Length - 5))) { [pscustomobject]@{ Type = $t; Property = $p } }
            }
        }
        @($typed).Count | Should -BeGreaterThan 20
        foreach ($x in $typed) {
            $member = (Get-TypeData $x.Type.FullName).Members[$x.Property.Name]
            $member | Should -Not -BeNullOrEmpty -Because "$($x.Type.Name).$($x.Property.Name) needs its hidden member in CalicoBpf.Types.ps1xml"
            $member.GetCodeReference.ReturnType | Should -Be $x.Property.PropertyType -Because "$($x.Type.Name).$($x.Property.Name) is typed"
            # Hidden: Get-Member lists it only with -Force, so JSON, CSV and Format-List * leave it out.
            $o = [System.Runtime.CompilerServices.RuntimeHelpers]::GetUninitializedObject($x.Type)
            @($o | Get-Member -Name $x.Property.Name).Count | Should -Be 0 -Because "$($x.Type.Name).$($x.Property.Name) is hidden"
            @($o | Get-Member -Name $x.Property.Name -Force).Count | Should -Be 1 -Because "$($x.Type.Name).$($x.Property.Name) is there"
            $text = $x.Type.GetProperty($x.Property.Name.Substring(0, $x.Property.Name.Length - 5))
            $text.PropertyType | Should -Be ([string]) -Because "$($x.Type.Name).$($text.Name) is the text of $($x.Property.Name)"
        }
    }

    It 'enums are written by name by ConvertTo-Json, also after Select-Object; a number with no name stays a number; other modules'' enums do not change' {
        $e = [CalicoBpf.ConntrackEntry]@{ Protocol = 'Tcp'; Type = 'NatForward'; Flags = 'BA, NatOut' }
        $json = $e | ConvertTo-Json -Depth 3 | ConvertFrom-Json
        $json.Protocol | Should -Be 'Tcp'
        $json.Type | Should -Be 'NatForward'
        $json.Flags | Should -Be $e.Flags.ToString()
        ($e | Select-Object Protocol, Type | ConvertTo-Json -Compress) | Should -Be '{"Protocol":"Tcp","Type":"NatForward"}'
        ([CalicoBpf.ConntrackEntry]@{ Protocol = [Enum]::ToObject([CalicoBpf.IpProtocol], 200) } | Select-Object Protocol | ConvertTo-Json -Compress) | Should -Be '{"Protocol":200}'
        ([pscustomobject]@{ Color = [ConsoleColor]::Red } | ConvertTo-Json -Compress) | Should -Be '{"Color":12}'
    }

    It 'table durations are short and human: 11m08s, never every digit' {
        [CalicoBpf.ConntrackText]::ShortDuration([timespan]::FromSeconds(668.2828276)) | Should -Be '11m08s'
        [CalicoBpf.ConntrackText]::ShortDuration([timespan]::FromMilliseconds(850)) | Should -Be '850ms'
        [CalicoBpf.ConntrackText]::ShortDuration([timespan]::FromSeconds(8.36)) | Should -Be '8.3s'
        [CalicoBpf.ConntrackText]::ShortDuration([timespan]::FromSeconds(42.9)) | Should -Be '42s'
        [CalicoBpf.ConntrackText]::ShortDuration([timespan]'03:05:59') | Should -Be '3h05m'
        [CalicoBpf.ConntrackText]::ShortDuration([timespan]'2.04:00:00') | Should -Be '2d04h'
        [CalicoBpf.ConntrackText]::ShortDuration([timespan]'-00:00:05') | Should -Be '-5.0s'
    }
}

Describe 'Views of the demo cluster''s objects at 80 and 120 columns' -Skip:(-not $kernel) {
    BeforeAll {
        $cluster = Start-TestCluster -Scenario (Join-Path $PSScriptRoot '../../demo/cluster.yaml') -Directory $TestDrive
        $kc = @{ Kubeconfig = $cluster.Kubeconfig }
        $script:sets = [ordered]@{
            CalicoNode          = { Get-CalicoNode @kc }
            MapInfo             = { Get-BpfMap @kc -Node node-a }
            ConntrackEntry      = { Get-BpfConntrack @kc -Node node-a }
            ConntrackResolved   = { Get-BpfConntrack @kc -Node node-a -Resolve }
            ConntrackStatistic  = { Get-BpfConntrackStatistic @kc -Node node-a, node-b }
            NatFrontend         = { Get-BpfNat @kc -Node node-a }
            InterfaceCounter    = { Get-BpfCounter @kc -Node node-a }
            InterfaceState      = { Get-BpfInterface @kc -Node node-a }
            PolicyRule          = { Get-BpfPolicy @kc -Node node-a }
            CounterSample       = { Get-BpfCounter @kc -Node node-a -SampleInterval 1 -IncludeUnchanged }
            PolicyRuleSample    = { Get-BpfPolicy @kc -Node node-a -SampleInterval 1 -IncludeUnchanged }
            FelixBpfConfig      = { Get-FelixBpfConfig @kc }
            FelixEffectiveValue = { Get-FelixBpfConfig @kc -Node node-a -Effective }
            CheckResult         = { Test-CalicoEbpf @kc -Node node-a -WarningAction SilentlyContinue }
        }
        # Columns shown from 120 columns up: the last of their view, left out at 80.
        $script:wideOnly = @{ 'CalicoBpf.ConntrackEntry' = @('ServiceEndpoint'); 'CalicoBpf.ConntrackEntry#Resolved' = @('Protocol') }
        # Views whose names need more than 80 columns: checked from 120 up (help: Format-List on narrower consoles).
        $script:minimumWidth = @{ 'CalicoBpf.ConntrackEntry#Resolved' = 120 }
        $script:objects = @{}
        foreach ($k in $sets.Keys) { $objects[$k] = @(& $sets[$k] 2>$null) }
    }
    AfterAll { Stop-TestCluster $cluster }

    It '<_> exports to CSV with every cell a value, never a .NET type name, and reads back' -ForEach @('CalicoNode', 'MapInfo', 'ConntrackEntry', 'ConntrackStatistic', 'NatFrontend', 'InterfaceCounter', 'InterfaceState', 'PolicyRule', 'CounterSample', 'PolicyRuleSample', 'FelixBpfConfig', 'FelixEffectiveValue', 'CheckResult') {
        $items = $objects[$_]
        $csv = @($items | ConvertTo-Csv)
        $back = @($csv | ConvertFrom-Csv)
        $back.Count | Should -Be $items.Count
        foreach ($row in $back) {
            foreach ($p in $row.PSObject.Properties) {
                $p.Value | Should -Not -Match '^System\.[\w.`]+(\[.*\])?$' -Because "$_ column $($p.Name) holds a type name, not its value"
                $p.Value | Should -Not -Match '^CalicoBpf\.[\w.]+$' -Because "$_ column $($p.Name) holds a type name, not its value"
            }
        }
        if ($items[0].PSObject.Properties['Node']) { $back[0].Node | Should -Be "$($items[0].Node)" }
    }

    It '<_> as JSON: addresses and durations as text, enums by name, the same after Select-Object, and back by ConvertFrom-Json' -ForEach @('CalicoNode', 'MapInfo', 'ConntrackEntry', 'ConntrackStatistic', 'NatFrontend', 'InterfaceCounter', 'InterfaceState', 'PolicyRule', 'CounterSample', 'PolicyRuleSample', 'FelixBpfConfig', 'FelixEffectiveValue', 'CheckResult') {
        $items = $objects[$_]
        $set = $_
        foreach ($json in @(($items | ConvertTo-Json -Depth 8), ($items | Select-Object * | ConvertTo-Json -Depth 8))) {
            $json | Should -Not -Match '"(AddressFamily|Ticks|TotalSeconds|ScopeId|IsIPv6Multicast)":' -Because "$set as JSON holds no .NET fields of an address or a duration"
            $back = @($json | ConvertFrom-Json)
            $back.Count | Should -Be $items.Count
            for ($i = 0; $i -lt $items.Count; $i++) {
                foreach ($p in $items[$i].PSObject.Properties) {
                    $v = $p.Value
                    if ($v -is [enum]) { $back[$i].($p.Name) | Should -BeOfType [string] -Because "$set.$($p.Name) is an enum, written by name"; $back[$i].($p.Name) | Should -Be $v.ToString() }
                    elseif ($v -is [string]) { $back[$i].($p.Name) | Should -BeExactly $v -Because "$set.$($p.Name) reads back" }
                    elseif ($v -is [int] -or $v -is [long] -or $v -is [bool]) { $back[$i].($p.Name) | Should -Be $v -Because "$set.$($p.Name) reads back" }
                }
            }
        }
    }

    It 'the TcpState view of ConntrackStatistic at <_> columns: no line wider, every column there' -ForEach 80, 120 {
        $width = $_
        $labels = ($tables | Where-Object { $_.Type -eq 'CalicoBpf.ConntrackStatistic' -and $_.View -eq 'TcpState' }).Labels
        $labels | Should -Be @('Node', 'Tcp', 'TcpEstablished', 'TcpClosed', 'TcpReset', 'TcpSynSent')
        $lines = @($objects['ConntrackStatistic'] | Format-Table -View TcpState | Out-String -Width $width) -split "`r?`n" | Where-Object { $_.Trim() }
        $lines | ForEach-Object { $_.TrimEnd().Length | Should -BeLessOrEqual $width }
        $lines[0].Trim() -split '\s+' | Should -Be $labels
        $lines.Count | Should -Be (2 + $objects['ConntrackStatistic'].Count)
    }

    It 'a conntrack entry''s typed values: SourceAddressValue is an IPAddress, AgeValue a TimeSpan, both out of JSON and CSV' {
        $e = $objects['ConntrackEntry'] | Where-Object Type -eq 'NatForward' | Select-Object -First 1
        $e.SourceAddressValue | Should -BeOfType [System.Net.IPAddress]
        $e.SourceAddressValue.ToString() | Should -Be $e.SourceAddress
        $e.AgeValue | Should -BeOfType [timespan]
        $e.AgeValue.ToString('c') | Should -Be $e.Age
        $e.ServiceAddressValue | Should -BeOfType [System.Net.IPAddress]
        $e.ReverseKey.AddressAValue | Should -BeOfType [System.Net.IPAddress]
        ($e | ConvertTo-Json -Depth 4) | Should -Not -Match '(Address|Age|A|B)Value"'
        ($e | ConvertTo-Csv | Select-Object -First 1) | Should -Not -Match 'AddressValue|AgeValue'
        ($e | Format-List * | Out-String) | Should -Not -Match 'AgeValue'
        # Sorting by age is by time, also past a day (the text would put 1.00:00:00 before 02:00:00).
        $sorted = @($objects['ConntrackEntry'] | Sort-Object AgeValue)
        for ($i = 1; $i -lt $sorted.Count; $i++) { $sorted[$i].AgeValue | Should -BeGreaterOrEqual $sorted[$i - 1].AgeValue }
        $config = $objects['FelixBpfConfig'] | Where-Object Name -eq 'default'
        $config.Resource.spec.bpfEnabled | Should -BeTrue
        ($config | ConvertTo-Json -Depth 6 | ConvertFrom-Json).Resource.metadata.name | Should -Be 'default'
    }

    It '<_> at <Width> columns: no line wider, every column there' -ForEach @('CalicoNode', 'MapInfo', 'ConntrackEntry', 'ConntrackResolved', 'ConntrackStatistic', 'NatFrontend', 'InterfaceCounter', 'InterfaceState', 'PolicyRule', 'CounterSample', 'PolicyRuleSample', 'FelixBpfConfig', 'FelixEffectiveValue', 'CheckResult') {
        $set = $_
        $items = $objects[$set]
        $items | Should -Not -BeNullOrEmpty -Because "the demo cluster has $set objects"
        $typeName = @($items[0].PSObject.TypeNames)[0]
        $view = $tables | Where-Object Type -eq $typeName | Select-Object -First 1
        $view | Should -Not -BeNullOrEmpty -Because "$typeName has a table view"
        foreach ($width in @(80, 120, 200) | Where-Object { $_ -ge [int]$minimumWidth[$view.View] }) {
            $text = $items | Out-String -Width $width
            foreach ($line in $text -split "`r?`n") {
                $line.TrimEnd().Length | Should -BeLessOrEqual $width -Because "$set at $width columns: '$line'"
            }
            $header = ($text -split "`r?`n" | Where-Object { $_ -match "^\s*$([regex]::Escape($view.Labels[0]))\s" } | Select-Object -First 1)
            $header | Should -Not -BeNullOrEmpty -Because "$set at $width columns has its header line"
            foreach ($label in $view.Labels) {
                # A trailing column for wide consoles may give way at 80, as PowerShell's own views do.
                if ($width -le 120 -and $wideOnly[$view.View] -contains $label) { continue }
                $header | Should -Match "(^|\s)$([regex]::Escape($label))(\s|$)" -Because "$set at $width columns keeps column $label"
            }
        }
    }
}
