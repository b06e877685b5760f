# deploy/calicobpf-rbac.yaml: each cmdlet works with the role the docs assign it, and with less it
# fails with a message naming the missing permission. The test cluster evaluates the manifest's
# ClusterRoles and ClusterRoleBindings as Kubernetes' RBAC does (kubectl auth can-i's view of the
# roles is tests/CalicoBpf.TestCluster.Tests' RbacReviewTests).
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    Import-ModuleUnderTest
    $cluster = Start-ScenarioCluster rbac $TestDrive
    if ($cluster) {
        $kc = @{}
        foreach ($who in 'reader', 'operator', 'nobody') {
            $kc[$who] = Join-Path $TestDrive "kubeconfig-$who"
            (Get-Content -Raw $cluster.Kubeconfig) -replace 'token: admin-token', "token: $who-token" | Set-Content $kc[$who]
        }
    }
}

AfterAll { Stop-ScenarioCluster $cluster }

Describe 'calicobpf-reader' -Skip:(-not $kernel) {
    It 'reads nodes, Felix configuration and effective values' {
        (Get-CalicoNode -Kubeconfig $kc.reader).Node | Should -Be 'rb-a'
        (Get-FelixBpfConfig -Kubeconfig $kc.reader).Name | Should -Be 'default'
        (Get-FelixBpfConfig -Kubeconfig $kc.reader -Node rb-a -Effective -Field bpfEnabled).Value | Should -Be 'true'
    }

    It 'runs the cluster checks; the node checks are skipped because it may not exec, said once' {
        $r = @(Test-CalicoEbpf -Kubeconfig $kc.reader)
        $access = $r | Where-Object Check -eq 'access'
        ($access.Status, $access.Evidence) | Should -Be @('Fail', 'create pods/exec')
        ($r | Where-Object { $_.Check -eq 'drops' }).Message | Should -Match 'may not exec into calico-node'
        ($r | Where-Object { $_.Check -eq 'bpf-running' }).Status | Should -Be 'Pass'
        @($r | Where-Object Status -eq 'Fail').Count | Should -Be 1
    }

    It 'is refused the dataplane (exec) and changes, with the missing permission named' {
        $null = Get-BpfCounter -Kubeconfig $kc.reader -Node rb-a -ErrorVariable err -ErrorAction SilentlyContinue
        "$($err[0])" | Should -Match 'cannot create resource "pods/exec"'
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ClusterForbidden,*'
        $e = { Set-FelixBpfConfig -Kubeconfig $kc.reader -BpfLogLevel Info } | Should -Throw -PassThru
        $e.Exception.Message | Should -Match 'cannot patch resource "felixconfigurations" in API group "projectcalico.org"|cannot patch resource "felixconfigurations" in API group "crd.projectcalico.org"'
    }
}

Describe 'calicobpf-operator' -Skip:(-not $kernel) {
    It 'reads the dataplane, changes Felix configuration, and every check runs' {
        @(Get-BpfConntrack -Kubeconfig $kc.operator -Node rb-a).Count | Should -Be 3
        (Set-FelixBpfConfig -Kubeconfig $kc.operator -Node rb-a -BpfLogLevel Info -PassThru).BpfLogLevel | Should -Be 'Info'
        $r = @(Test-CalicoEbpf -Kubeconfig $kc.operator)
        ($r | Where-Object Check -eq 'access').Status | Should -Be 'Pass'
        @($r | Where-Object Status -in 'Fail', 'Error', 'Skipped') | Should -BeNullOrEmpty
    }
}

Describe 'an identity bound to nothing' -Skip:(-not $kernel) {
    It 'gets a clear permission error naming what it lacks' {
        $e = { Get-CalicoNode -Kubeconfig $kc.nobody } | Should -Throw -PassThru
        $e.FullyQualifiedErrorId | Should -BeLike 'ClusterForbidden,*'
        $e.Exception.Message | Should -Match 'User "system:serviceaccount:calicobpf:nobody" cannot list resource "nodes"'
    }
}
