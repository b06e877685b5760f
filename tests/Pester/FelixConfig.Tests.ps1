# Get-FelixBpfConfig and Set-FelixBpfConfig against the test cluster: both API groups, the v3.28,
# v3.30 and head CRDs, validation that matches the API server's, -WhatIf, concurrent writers, RBAC.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    $script:kubectl = [bool](Get-Command kubectl -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    Import-ModuleUnderTest

    function Start-Scenario([string] $Name) { Start-ScenarioCluster $Name $TestDrive }
    function Stop-Scenario($Cluster) { Stop-ScenarioCluster $Cluster }

    function Get-Writes($Cluster) { Get-ClusterWrites $Cluster }
}

# A FelixConfiguration field is written in four places: the FelixFields table, a FelixBpfConfig
# property, a Set-FelixBpfConfig parameter and that parameter's help. This ties them together, so
# that a field added to one and forgotten in another fails here rather than being silently unsettable.
Describe 'Felix fields: one table, one property, one parameter, one help entry each' {
    BeforeAll {
        $fields = [CalicoBpf.Cluster.FelixFields]::All
        $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
        $set = Get-Command Set-FelixBpfConfig
        $own = @($set.Parameters.Values | Where-Object Name -NotIn $common)
        # Parameters of Set-FelixBpfConfig that are not fields: what to change, and how.
        $notFields = 'Name', 'Node', 'Clear', 'UpdateInstallation', 'PassThru', 'Force', 'Kubeconfig', 'Context', 'TimeoutSec'
        # How each kind of field is typed: as a parameter (what the user types) and as a property (what Get-FelixBpfConfig shows).
        $parameterType = @{
            Boolean = [Nullable[bool]]; Integer = [Nullable[long]]; Text = [string]; Duration = [string]
            TextList = [string[]]; TextMap = [hashtable]; IntOrText = [string]
        }
        $propertyType = @{
            Boolean = [Nullable[bool]]; Integer = [Nullable[long]]; Text = [string]; Duration = [string]   # as written; the TimeSpan is the hidden NAMEValue
            TextList = [CalicoBpf.ValueList[string]]; TextMap = [CalicoBpf.ValueMap]; IntOrText = [string]
        }
        # A value of each kind as the API serves it.
        $sample = @{
            Boolean = $true; Integer = 7; Text = 'x'; Duration = '1m30s'; TextList = @('a'); TextMap = @{ k = 'v' }; IntOrText = '20000:29999'
        }
        # The help page's parameters: "### -Name", its description, and the Type: line of its block.
        $helpPath = Join-Path $PSScriptRoot '../../en-US/Set-FelixBpfConfig.md'
        $help = @{}
        foreach ($m in [regex]::Matches((Get-Content -Raw $helpPath), '(?ms)^### -(\w+)\r?\n(.*?)^```yaml\r?\n.*?^Type: (\S+)')) {
            $help[$m.Groups[1].Value] = [pscustomobject]@{ Description = $m.Groups[2].Value.Trim(); Type = $m.Groups[3].Value }
        }
    }

    It 'every field has a Set-FelixBpfConfig parameter of its kind, in both parameter sets' {
        $fields.Count | Should -BeGreaterThan 60
        foreach ($f in $fields) {
            $p = $set.Parameters[$f.Property]
            $p | Should -Not -BeNullOrEmpty -Because "$($f.Json) must be settable with -$($f.Property)"
            $p.ParameterType | Should -Be $parameterType[[string]$f.Kind] -Because "-$($f.Property) sets a $($f.Kind) field"
            @($p.ParameterSets.Keys | Sort-Object) | Should -Be @('ByName', 'ByNode') -Because "-$($f.Property) works on a named and a node's FelixConfiguration"
        }
    }

    It 'every Set-FelixBpfConfig parameter that is not a field option is a field' {
        foreach ($p in $own | Where-Object Name -NotIn $notFields) {
            [CalicoBpf.Cluster.FelixFields]::Find($p.Name) | Should -Not -BeNullOrEmpty -Because "-$($p.Name) must name a FelixFields entry, or it sets nothing"
        }
    }

    It 'every field is a FelixBpfConfig property of its kind that reads that field and no other' {
        foreach ($f in $fields) {
            $property = [CalicoBpf.FelixBpfConfig].GetProperty($f.Property)
            $property | Should -Not -BeNullOrEmpty -Because "Get-FelixBpfConfig must show $($f.Json) as .$($f.Property)"
            $property.PropertyType | Should -Be $propertyType[[string]$f.Kind] -Because ".$($f.Property) shows a $($f.Kind) field"
            $spec = @{ $f.Json = $sample[[string]$f.Kind] }
            $resource = [System.Text.Json.Nodes.JsonNode]::Parse((@{ apiVersion = 'projectcalico.org/v3'; metadata = @{ name = 'default' }; spec = $spec } | ConvertTo-Json -Depth 5 -Compress))
            $config = [CalicoBpf.Cluster.FelixFields]::Read($resource, '')
            $config.($f.Property) | Should -Not -BeNullOrEmpty -Because ".$($f.Property) must read $($f.Json)"
            $others = @($fields | Where-Object Json -ne $f.Json | Where-Object { $null -ne $config.($_.Property) } | ForEach-Object Property)
            $others | Should -BeNullOrEmpty -Because "only .$($f.Property) reads $($f.Json)"
        }
    }

    It 'the help page documents every parameter, with the parameter''s type, and no parameter that is gone' {
        foreach ($p in $own) {
            $help.ContainsKey($p.Name) | Should -BeTrue -Because "en-US/Set-FelixBpfConfig.md must have a '### -$($p.Name)' entry"
            $help[$p.Name].Description | Should -Match '\w{4,}' -Because "-$($p.Name) needs a description"
            if ($p.Name -notin $notFields) {
                $type = if ($p.ParameterType.IsGenericType) { $p.ParameterType.GenericTypeArguments[0].Name } else { $p.ParameterType.Name }
                $help[$p.Name].Type | Should -Be $type -Because "the help of -$($p.Name) must state its type"
            }
        }

        foreach ($name in $help.Keys) {
            $set.Parameters.ContainsKey($name) | Should -BeTrue -Because "the help page documents -$name, which Set-FelixBpfConfig does not have"
        }
    }
}

Describe 'Operator install, both groups, head CRDs' -Skip:(-not $kernel) {
    BeforeAll { $cluster = Start-Scenario resources }
    AfterAll { Stop-Scenario $cluster }

    It 'reads every FelixConfiguration through projectcalico.org/v3, fields typed, absent fields null' {
        $all = @(Get-FelixBpfConfig)
        $all.Name | Should -Be @('default', 'node.api-a')
        $d = $all[0]
        $d | Should -BeOfType ([CalicoBpf.FelixBpfConfig])
        ($d.ApiVersion, $d.Scope, $d.BpfEnabled, $d.BpfExternalServiceMode) | Should -Be @('projectcalico.org/v3', 'Global', $true, 'Tunnel')
        $d.BpfLogLevel | Should -Be ''
        $d.VxlanPort | Should -BeNullOrEmpty
        $d.SetFields | Should -Be @('bpfEnabled', 'bpfLogLevel', 'bpfExternalServiceMode')
        (Get-FelixBpfConfig -Node api-a).Node | Should -Be 'api-a'
        ($d | Format-List | Out-String) | Should -Match 'bpfExternalServiceMode: Tunnel'
        { Get-FelixBpfConfig nope -ErrorAction Stop } | Should -Throw '*no FelixConfiguration nope*'
    }

    It '-Effective says what Felix on the node uses and where each value comes from' {
        $e = Get-FelixBpfConfig -Node api-a -Effective
        $e | Should -Not -BeNullOrEmpty
        $byField = @{}; $e | ForEach-Object { $byField[$_.Field] = $_ }
        ($byField.bpfLogLevel.Value, $byField.bpfLogLevel.Source) | Should -Be @('Info', 'NodeConfiguration')
        ($byField.bpfEnabled.Value, $byField.bpfEnabled.Source) | Should -Be @('true', 'GlobalConfiguration')
        ($byField.vxlanPort.Value, $byField.vxlanPort.Source) | Should -Be @('4789', 'BuiltInDefault')
        # The built-in default is the node's release's (calico/node:v3.30.7): bpfRedirectToPeer was L2Only before v3.32.
        ($byField.bpfRedirectToPeer.Value, $byField.bpfRedirectToPeer.SourceDetail) | Should -Be @('L2Only', "Felix's default in v3.30")
        $cleanup = $byField.bpfKubeProxyIptablesCleanupEnabled
        ($cleanup.Value, $cleanup.Source) | Should -Be @('false', 'Environment')
        $cleanup.SourceDetail | Should -Be 'FELIX_BPFKUBEPROXYIPTABLESCLEANUPENABLED in DaemonSet calico-system/calico-node'
        # head's CRD no longer has the v3.28 field
        $byField.ContainsKey('bpfKubeProxyEndpointSlicesEnabled') | Should -BeFalse
        @(Get-FelixBpfConfig -Node api-a -Effective -Field BpfLog*).Field | Should -Be @('bpfLogLevel', 'bpfLogFilters')
    }

    It '-WhatIf prints each field as old -> new and sends no write' {
        $writes = Get-Writes $cluster
        # What if: lines go to the host, so a child pwsh shows them on its stdout.
        $out = & (Get-PwshPath) -NoProfile -NonInteractive -Command "Import-Module '$(Get-ModuleUnderTest)'; Set-FelixBpfConfig -Kubeconfig '$($cluster.Kubeconfig)' -BpfLogLevel Debug -BpfKubeProxyMinSyncPeriod 5s -WhatIf -WarningAction SilentlyContinue"
        "$out" | Should -Match ([regex]::Escape('bpfLogLevel: "" -> Debug, bpfKubeProxyMinSyncPeriod: (unset) -> 5s" on target "FelixConfiguration default (projectcalico.org/v3)'))
        Get-Writes $cluster | Should -Be $writes
        (Get-FelixBpfConfig default).BpfKubeProxyMinSyncPeriod | Should -BeNullOrEmpty
    }

    It 'sends only the fields given, as a merge patch, and -PassThru returns the result' {
        $r = Set-FelixBpfConfig -BpfKubeProxyMinSyncPeriod 1500ms -BpfMapSizeNATFrontend 131072 -PassThru
        $r.BpfKubeProxyMinSyncPeriod | Should -Be '1500ms'
        $r.BpfKubeProxyMinSyncPeriodValue | Should -Be ([TimeSpan]::FromMilliseconds(1500))
        $r.BpfMapSizeNATFrontend | Should -Be 131072
        ($r.BpfEnabled, $r.BpfExternalServiceMode) | Should -Be @($true, 'Tunnel')
        Set-FelixBpfConfig -Clear bpfMapSizeNATFrontend
        (Get-FelixBpfConfig default).SetFields | Should -Not -Contain 'bpfMapSizeNATFrontend'
    }

    It 'refuses locally exactly what the CRD refuses: nothing is sent, and the API server agrees' -Skip:(-not $kubectl) {
        $cases = @(
            @{ Field = 'BpfLogLevel'; Json = 'bpfLogLevel'; Bad = 'Verbose'; Good = 'debug' }
            @{ Field = 'BpfKubeProxyMinSyncPeriod'; Json = 'bpfKubeProxyMinSyncPeriod'; Bad = '1.5s'; Good = '1m30s' }
            @{ Field = 'BpfAttachType'; Json = 'bpfAttachType'; Bad = 'XDP'; Good = 'TCX' }
            @{ Field = 'BpfMapSizeConntrackCleanupQueue'; Json = 'bpfMapSizeConntrackCleanupQueue'; Bad = 0; Good = 5 }
            @{ Field = 'BpfEnforceRPF'; Json = 'bpfEnforceRPF'; Bad = 'Sometimes'; Good = 'Strict' }
        )
        foreach ($c in $cases) {
            $writes = Get-Writes $cluster
            $p = @{ $c.Field = $c.Bad }
            Set-FelixBpfConfig @p -Force -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidFelixValue,*' -Because $c.Field
            "$($err[0])" | Should -Match "$($c.Json): .*(not accepted|not a duration|Unsupported value|greater than or equal)" -Because $c.Field
            Get-Writes $cluster | Should -Be $writes -Because "$($c.Field) $($c.Bad) must not be sent"
            # The test cluster validates with the same CRD: it refuses the bad value, takes the good one.
            $bad = @{ spec = @{ $c.Json = $c.Bad } } | ConvertTo-Json -Compress
            $good = @{ spec = @{ $c.Json = $c.Good } } | ConvertTo-Json -Compress
            "$(kubectl --kubeconfig $cluster.Kubeconfig patch felixconfigurations.crd.projectcalico.org default --type merge --dry-run=server -p $bad 2>&1)" | Should -Match 'is invalid' -Because $c.Field
            kubectl --kubeconfig $cluster.Kubeconfig patch felixconfigurations.crd.projectcalico.org default --type merge --dry-run=server -p $good 2>&1 | Should -Match 'patched' -Because $c.Field
            $p = @{ $c.Field = $c.Good }
            Set-FelixBpfConfig @p -Force -WhatIf -WarningAction SilentlyContinue -ErrorVariable err2 -ErrorAction SilentlyContinue
            $err2 | Should -BeNullOrEmpty -Because "$($c.Field) $($c.Good) is valid"
        }
    }

    It 'refuses what Felix refuses though the CRD takes it: ranges, regexps, CIDRs, names; nothing is sent' -Skip:(-not $kubectl) {
        $cases = @(
            @{ Field = 'VxlanPort'; Json = 'vxlanPort'; Bad = 99999; Good = 4789; Says = '99999 is out of range; give 1 to 65535' }
            @{ Field = 'BpfMapSizeConntrack'; Json = 'bpfMapSizeConntrack'; Bad = -5; Good = 1024000; Says = '-5 is out of range; give 1 to 4294967295' }
            @{ Field = 'VxlanVNI'; Json = 'vxlanVNI'; Bad = 16777216; Good = 4097; Says = 'give 0 to 16777215' }
            @{ Field = 'BpfMaglevMaxServices'; Json = 'bpfMaglevMaxServices'; Bad = 5000; Good = 200; Says = 'give 1 to 3000' }
            @{ Field = 'BpfPSNATPorts'; Json = 'bpfPSNATPorts'; Bad = '30000:20000'; Good = '30000:39999'; Says = 'starts above its end' }
            @{ Field = 'BpfDataIfacePattern'; Json = 'bpfDataIfacePattern'; Bad = '^(?!cali).*'; Good = '^(eth|ens).*'; Says = "Go's regular expressions do not have" }
            @{ Field = 'BpfL3IfacePattern'; Json = 'bpfL3IfacePattern'; Bad = '^(wg'; Good = '^wg.*'; Says = 'is not a regular expression' }
            @{ Field = 'BpfExcludeCIDRsFromNAT'; Json = 'bpfExcludeCIDRsFromNAT'; Bad = @('10.96.0.10/32', '10.0.0.0/33'); Good = @('169.254.20.10/32'); Says = "'10.0.0.0/33' is not an address or a CIDR" }
            @{ Field = 'BpfForceTrackPacketsFromIfaces'; Json = 'bpfForceTrackPacketsFromIfaces'; Bad = @('docker+', 'a-very-long-interface'); Good = @('docker+', 'podman0'); Says = "'a-very-long-interface': each must be an interface name" }
            @{ Field = 'BpfLogFilters'; Json = 'bpfLogFilters'; Bad = @{ 'eth0 and more' = 'tcp' }; Good = @{ eth0 = 'tcp port 80' }; Says = "key 'eth0 and more'" }
        )
        foreach ($c in $cases) {
            $writes = Get-Writes $cluster
            $p = @{ $c.Field = $c.Bad }
            Set-FelixBpfConfig @p -Force -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
            $err[0].FullyQualifiedErrorId | Should -BeLike 'InvalidFelixValue,*' -Because $c.Field
            "$($err[0])" | Should -Match ([regex]::Escape("$($c.Json): ")) -Because $c.Field
            "$($err[0])" | Should -Match ([regex]::Escape($c.Says)) -Because $c.Field
            Get-Writes $cluster | Should -Be $writes -Because "$($c.Field) $($c.Bad) must not be sent"
            # The CRD alone would have stored it: this is Felix's rule, not the API server's.
            $bad = @{ spec = @{ $c.Json = $c.Bad } } | ConvertTo-Json -Compress
            kubectl --kubeconfig $cluster.Kubeconfig patch felixconfigurations.crd.projectcalico.org default --type merge --dry-run=server -p $bad 2>&1 | Should -Match 'patched' -Because "the CRD takes $($c.Json) $($c.Bad)"
            $p = @{ $c.Field = $c.Good }
            Set-FelixBpfConfig @p -Force -WhatIf -WarningAction SilentlyContinue -ErrorVariable err2 -ErrorAction SilentlyContinue
            $err2 | Should -BeNullOrEmpty -Because "$($c.Field) $($c.Good) is valid"
        }
    }

    It '-Node refuses a node the cluster does not have, unless -Force' {
        $writes = Get-Writes $cluster
        Set-FelixBpfConfig -Node node-zz -BpfLogLevel Info -ErrorVariable err -ErrorAction SilentlyContinue -WarningAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'NodeNotFound,*'
        "$($err[0])" | Should -Match 'There is no node node-zz in this cluster .* give -Force'
        Get-Writes $cluster | Should -Be $writes
        (Get-FelixBpfConfig).Name | Should -Not -Contain 'node.node-zz'
        Set-FelixBpfConfig -Node node-zz -BpfLogLevel Info -Force -WarningAction SilentlyContinue
        (Get-FelixBpfConfig).Name | Should -Contain 'node.node-zz'
        Set-FelixBpfConfig -Node node-zz -BpfLogLevel Off -WarningAction SilentlyContinue -ErrorAction Stop
        kubectl --kubeconfig $cluster.Kubeconfig delete felixconfigurations.crd.projectcalico.org node.node-zz 2>&1 | Out-Null
    }

    It '-Node creates node.NAME when it is missing (-Force: api-b has not joined this cluster)' {
        $r = Set-FelixBpfConfig -Node api-b -BpfLogLevel Debug -Force -PassThru -WarningAction SilentlyContinue
        ($r.Name, $r.Scope, $r.Node, $r.BpfLogLevel) | Should -Be @('node.api-b', 'Node', 'api-b', 'Debug')
        (Get-FelixBpfConfig).Name | Should -Contain 'node.api-b'
    }

    It 'warns when the calico-node environment overrides the field, and when Debug logging costs performance' {
        Set-FelixBpfConfig -BpfKubeProxyIptablesCleanupEnabled:$true -Force -WarningVariable warn -WarningAction SilentlyContinue
        "$warn" | Should -Match 'FELIX_BPFKUBEPROXYIPTABLESCLEANUPENABLED in DaemonSet calico-system/calico-node sets it to false'
        Set-FelixBpfConfig -Node api-a -BpfLogLevel Debug -WarningVariable warn -WarningAction SilentlyContinue
        "$warn" | Should -Match 'significant performance cost'
    }

    It 'bpfEnabled on an operator install: refused with the exact command, -UpdateInstallation changes the Installation' {
        $writes = Get-Writes $cluster
        Set-FelixBpfConfig -BpfEnabled:$false -ErrorVariable err -ErrorAction SilentlyContinue
        $err[0].FullyQualifiedErrorId | Should -BeLike 'BpfEnabledOwnedByOperator,*'
        "$($err[0])" | Should -Match ([regex]::Escape("Set-FelixBpfConfig -BpfEnabled:`$false -UpdateInstallation"))
        Get-Writes $cluster | Should -Be $writes
        Set-FelixBpfConfig -BpfEnabled:$false -UpdateInstallation -Force
        kubectl --kubeconfig $cluster.Kubeconfig get installation default -o jsonpath='{.spec.calicoNetwork.linuxDataplane}' | Should -Be 'Iptables'
        (Get-FelixBpfConfig default).BpfEnabled | Should -BeTrue
    }

    It 'two writers: different fields both land; the same field is a conflict, never overwritten' {
        $conn = [CalicoBpf.Cluster.ClusterConnections]::Get([CalicoBpf.Cluster.ClusterTarget]::new($cluster.Kubeconfig, $null))
        $felix = [CalicoBpf.Cluster.FelixConfigClient]::new($conn, [Threading.CancellationToken]::None)
        function Value($Json, $Value) {
            [ValueTuple[CalicoBpf.Cluster.FelixField, System.Text.Json.Nodes.JsonNode]]::new([CalicoBpf.Cluster.FelixFields]::Find($Json), [System.Text.Json.Nodes.JsonNode]::Parse(($Value | ConvertTo-Json -Compress)))
        }
        $list = [System.Collections.Generic.List[ValueTuple[CalicoBpf.Cluster.FelixField, System.Text.Json.Nodes.JsonNode]]]::new()
        $list.Add((Value vxlanPort 4790))
        $plan = $felix.Plan('default', $list, $false)
        # Someone else changes another field after the plan was made.
        Set-FelixBpfConfig -VxlanVNI 4097 -Force
        $null = $felix.Apply($plan, $false)
        $d = Get-FelixBpfConfig default
        ($d.VxlanPort, $d.VxlanVNI) | Should -Be @(4790, 4097)

        $list[0] = Value vxlanPort 4791
        $plan = $felix.Plan('default', $list, $false)
        Set-FelixBpfConfig -VxlanPort 5000 -Force
        $e = { $felix.Apply($plan, $false) } | Should -Throw -PassThru
        $e.Exception.InnerException | Should -BeOfType ([CalicoBpf.Cluster.FelixConflictException])
        $e.Exception.InnerException.Message | Should -Match 'vxlanPort was 4790 and is now 5000\); nothing was written'
        (Get-FelixBpfConfig default).VxlanPort | Should -Be 5000
    }

    It 'Use-FelixBpfDebugLog turns Debug on for the script block and puts the previous values back' {
        $inside = Use-FelixBpfDebugLog -Node api-a -Filter 'tcp port 80' -WarningAction SilentlyContinue -ScriptBlock {
            $c = Get-FelixBpfConfig node.api-a
            "$($c.BpfLogLevel) $($c.BpfLogFilters['all'])"
        }
        $inside | Should -Be 'Debug tcp port 80'
        $after = Get-FelixBpfConfig node.api-a
        $after.BpfLogLevel | Should -Be 'Debug'   # as an earlier test left it
        $after.BpfLogFilters | Should -BeNullOrEmpty
    }

    It 'Use-FelixBpfDebugLog restores after an error, and deletes a node.NAME it had to create' {
        Set-FelixBpfConfig -Node api-a -BpfLogLevel Info
        { Use-FelixBpfDebugLog -Node api-a, api-c -WarningAction SilentlyContinue -ScriptBlock { throw 'boom' } } | Should -Throw '*boom*'
        (Get-FelixBpfConfig node.api-a).BpfLogLevel | Should -Be 'Info'
        (Get-FelixBpfConfig).Name | Should -Not -Contain 'node.api-c'
    }

    It 'Use-FelixBpfDebugLog: Ctrl+C in the script block still restores; -WhatIf changes nothing and does not run it' {
        $writes = Get-Writes $cluster
        $ran = $false
        Use-FelixBpfDebugLog -WhatIf -ScriptBlock { $script:ran = $true }
        $ran | Should -BeFalse
        Get-Writes $cluster | Should -Be $writes

        $ps = [PowerShell]::Create()
        $null = $ps.AddScript("Import-Module '$(Get-ModuleUnderTest)'; Use-FelixBpfDebugLog -Kubeconfig '$($cluster.Kubeconfig)' -WarningAction SilentlyContinue -ScriptBlock { 'started'; Start-Sleep 60 }")
        $out = [System.Management.Automation.PSDataCollection[psobject]]::new()
        $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $out)
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(20)
            while ($out.Count -eq 0 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            (Get-FelixBpfConfig default).BpfLogLevel | Should -Be 'Debug'
            $ps.Stop()
        }
        finally { $ps.Dispose() }
        (Get-FelixBpfConfig default).BpfLogLevel | Should -Be ''
    }

    It 'a read-only identity reads, and gets a clear permission error when it writes' {
        (Get-FelixBpfConfig -Kubeconfig $cluster.ReadonlyKubeconfig).Name | Should -Contain 'default'
        $err = { Set-FelixBpfConfig -Kubeconfig $cluster.ReadonlyKubeconfig -BpfLogLevel Info } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ClusterForbidden,*'
        $err.Exception.Message | Should -Match 'cannot patch resource "felixconfigurations"'
    }
}

Describe 'Manifest install on Calico v3.28 CRDs (crd.projectcalico.org/v1 only)' -Skip:(-not $kernel) {
    BeforeAll { $cluster = Start-Scenario manifest-v328 }
    AfterAll { Stop-Scenario $cluster }

    It 'reads through crd.projectcalico.org/v1, with the fields this Calico version has' {
        $d = Get-FelixBpfConfig default
        $d.ApiVersion | Should -Be 'crd.projectcalico.org/v1'
        $d.BpfKubeProxyEndpointSlicesEnabled | Should -BeTrue
    }

    It 'FELIX_BPFENABLED of the real manifest beats FelixConfiguration' {
        $e = Get-FelixBpfConfig -Node old-a -Effective -Field bpfEnabled
        ($e.Value, $e.Source, $e.SourceDetail) | Should -Be @('true', 'Environment', 'FELIX_BPFENABLED in DaemonSet kube-system/calico-node')
    }

    It 'refuses a field this version''s CRD lacks, by name, before sending anything' {
        $writes = Get-Writes $cluster
        Set-FelixBpfConfig -BpfConntrackLogLevel Debug -ErrorVariable err -ErrorAction SilentlyContinue
        "$($err[0])" | Should -Match 'bpfConntrackLogLevel: this cluster''s FelixConfiguration CRD has no such field'
        Get-Writes $cluster | Should -Be $writes
        Set-FelixBpfConfig -BpfKubeProxyEndpointSlicesEnabled:$false -PassThru | ForEach-Object BpfKubeProxyEndpointSlicesEnabled | Should -BeFalse
    }
}

Describe 'Calico v3.30 CRDs, and native projectcalico.org/v3 CRDs alone' -Skip:(-not $kernel) {
    It 'round-trips on the v3.30 CRD through crd.projectcalico.org/v1' {
        $cluster = Start-Scenario felix-v330
        try {
            (Get-FelixBpfConfig default).BpfLogLevel | Should -Be 'Info'
            $r = Set-FelixBpfConfig -BpfConntrackLogLevel Debug -BpfMapSizeConntrackScaling Disabled -PassThru
            ($r.ApiVersion, $r.BpfConntrackLogLevel, $r.BpfMapSizeConntrackScaling) | Should -Be @('crd.projectcalico.org/v1', 'Debug', 'Disabled')
            # bpfAttachType came in v3.31: this cluster refuses it.
            Set-FelixBpfConfig -BpfAttachType TCX -Force -ErrorVariable err -ErrorAction SilentlyContinue
            "$($err[0])" | Should -Match 'bpfAttachType: this cluster''s FelixConfiguration CRD has no such field'
        }
        finally { Stop-Scenario $cluster }
    }

    It 'round-trips through projectcalico.org/v3 when only v3 is served' {
        $cluster = Start-Scenario felix-v3only
        try {
            $r = Set-FelixBpfConfig -BpfExternalServiceMode DSR -Force -PassThru
            ($r.ApiVersion, $r.BpfExternalServiceMode, $r.BpfEnabled) | Should -Be @('projectcalico.org/v3', 'DSR', $true)
        }
        finally { Stop-Scenario $cluster }
    }
}

Describe 'Selector-scoped FelixConfigurations (v3.32+): -Effective evaluates their nodeSelector' -Skip:(-not $kernel) {
    BeforeAll {
        $cluster = Start-Scenario felix-selectors
        $PSDefaultParameterValues['*:Kubeconfig'] = $cluster.Kubeconfig
        function Effective([string] $Node, [string] $Field) {
            Get-FelixBpfConfig -Node $Node -Effective -Field $Field -WarningVariable w -WarningAction SilentlyContinue
            $script:warnings = @($w | ForEach-Object { "$_" })
        }
    }
    AfterAll {
        $PSDefaultParameterValues.Remove('*:Kubeconfig')
        Stop-Scenario $cluster
    }

    It 'a matching selector-scoped configuration comes between node.NAME and default' {
        $v = Effective sel-a bpfLogLevel
        ($v.Value, $v.Source, $v.SourceDetail) | Should -Be @('Debug', 'SelectorConfiguration', 'FelixConfiguration edge-debug')
        $v.Overrides | Should -Be 'Info (FelixConfiguration default)'
        $v = Effective sel-b bpfExternalServiceMode
        ($v.Value, $v.Source, $v.SourceDetail) | Should -Be @('DSR', 'SelectorConfiguration', 'FelixConfiguration core')
    }

    It 'several matches: the oldest is used (then the first by name), and a warning says which' {
        $null = Effective sel-a bpfLogLevel
        $warnings | Should -Contain 'Several selector-scoped FelixConfigurations match node sel-a (edge-debug, edge-too): Felix uses only the oldest, edge-debug, and logs a warning.'
    }

    It 'a selector that does not parse is named in a warning and applies nowhere' {
        $null = Effective sel-b bpfLogLevel
        $warnings | Should -Contain ('FelixConfiguration broken is not applied to any node: The selector "pool = ''x''" is not valid at position 6: ==, !=, in, not in, contains, starts with or ends with (after the label) was expected, not "= ''x''".')
        ((Effective sel-b bpfLogLevel).Value) | Should -Be 'Info'
    }

    It 'node.NAME still wins, and a node no selector matches gets default' {
        $v = Effective sel-c bpfLogLevel
        ($v.Value, $v.Source) | Should -Be @('Debug', 'NodeConfiguration')
        $v = Effective sel-c bpfExternalServiceMode
        ($v.Value, $v.Source) | Should -Be @('Tunnel', 'GlobalConfiguration')
    }

    It 'Test-CalicoEbpf names the selector-scoped configuration to fix' {
        $r = Test-CalicoEbpf -Check debug-logging -Node sel-a
        $r.Status | Should -Be 'Warning'
        $r.Remediation | Should -Be 'Set-FelixBpfConfig -Name edge-debug -Clear bpfLogLevel'
    }

    It 'Get-CalicoNode carries the node''s labels' {
        (Get-CalicoNode sel-a).Labels['pool'] | Should -Be 'edge'
    }
}
