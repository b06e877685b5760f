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
            NatFrontend         = { Get-BpfNat @kc -Node node-a }
            InterfaceCounter    = { Get-BpfCounter @kc -Node node-a }
            InterfaceState      = { Get-BpfInterface @kc -Node node-a }
            PolicyRule          = { Get-BpfPolicy @kc -Node node-a }
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

    It '<_> exports to CSV with every cell a value, never a .NET type name, and reads back' -ForEach @('CalicoNode', 'MapInfo', 'ConntrackEntry', 'NatFrontend', 'InterfaceCounter', 'InterfaceState', 'PolicyRule', 'FelixBpfConfig', 'FelixEffectiveValue', 'CheckResult') {
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

    It '<_> at <Width> columns: no line wider, every column there' -ForEach @('CalicoNode', 'MapInfo', 'ConntrackEntry', 'ConntrackResolved', 'NatFrontend', 'InterfaceCounter', 'InterfaceState', 'PolicyRule', 'FelixBpfConfig', 'FelixEffectiveValue', 'CheckResult') {
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
