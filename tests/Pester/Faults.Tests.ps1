# The test cluster's fault knobs: what an operator sees when a node's exec connection drops, a node
# is slow, or the API server itself fails.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    Import-ModuleUnderTest

    # Each Describe runs its own cluster; the cmdlets find it through the default -Kubeconfig.
    function Start-Scenario([string] $Name) {
        $script:cluster = Start-TestCluster -Scenario (Join-Path $PSScriptRoot "$Name.yaml") -Directory (Join-Path $TestDrive $Name)
        $PSDefaultParameterValues['*:Kubeconfig'] = $script:cluster.Kubeconfig
    }

    function Stop-Scenario {
        $PSDefaultParameterValues.Remove('*:Kubeconfig')
        [CalicoBpf.Cluster.ClusterConnections]::Reset()
        Stop-TestCluster $script:cluster
    }
}

Describe 'Nodes that fail below the API' -Skip:(-not $kernel) {
    BeforeAll { Start-Scenario faults }
    AfterAll { Stop-Scenario }

    It 'an exec connection that drops mid-dump is one error saying the output is incomplete; the other nodes complete' {
        $entries = @(Get-BpfConntrack -Node * -ErrorVariable errs -ErrorAction SilentlyContinue)
        @($entries | Where-Object Node -eq 'steady').Count | Should -Be 40
        @($entries | Where-Object Node -eq 'slow').Count | Should -Be 10
        $errs.Count | Should -Be 1
        $errs[0].TargetObject | Should -Be 'dies'
        $errs[0].Exception.Message | Should -BeLike '*did not finish on dies*closed before the command finished*output is incomplete*'
    }

    It 'Get-BpfMap: a connection dropped while counting is an error for that node, never short counts' {
        $maps = @(Get-BpfMap -Node steady, dies -ErrorVariable errs -ErrorAction SilentlyContinue)
        ($maps | Where-Object Name -eq 'cali_v4_ct3').Node | Should -Be 'steady'
        ($maps | Where-Object Name -eq 'cali_v4_ct3').Entries | Should -Be 40
        @($maps | Where-Object Node -eq 'dies').Count | Should -Be 0
        $errs.Count | Should -Be 1
        $errs[0].Exception.Message | Should -BeLike '*did not finish on dies*output is incomplete*'
    }

    It 'a slow node does not hold back the others: their objects come first' {
        (Get-BpfConntrack -Node slow, steady | Select-Object -First 1).Node | Should -Be 'steady'
    }
}

Describe 'An API server that fails' -Skip:(-not $kernel) {
    BeforeAll { Start-Scenario api-faults }
    AfterAll { Stop-Scenario }

    It 'a 500 from the API server stops the cmdlet with its status and message' {
        $err = { Get-BpfMap -Node * } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ClusterUnavailable,*'
        $err.Exception.Message | Should -BeLike '*500*etcdserver: request timed out*'
        $err = { Get-CalicoNode } | Should -Throw -PassThru
        $err.Exception.Message | Should -BeLike '*500*etcdserver: request timed out*'
    }

    It 'a 403 on the list -Resolve needs stops the cmdlet once, naming the missing right, before anything is read' {
        $err = { Get-BpfConntrack -Resolve -PinPath /nonexistent } | Should -Throw -PassThru
        $err.FullyQualifiedErrorId | Should -BeLike 'ClusterForbidden,*'
        $err.CategoryInfo.Category | Should -Be 'PermissionDenied'
        $err.Exception.Message | Should -BeLike '*list services*403*cannot list resource "services"*'
    }
}
