# deploy/calicobpf-rbac.yaml: each cmdlet works with the role the docs assign it, and with less it
# fails with a message naming the missing permission. The test cluster evaluates the manifest's
# ClusterRoles and ClusterRoleBindings as Kubernetes' RBAC does.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    Import-Module (Get-ModuleUnderTest) -Force
    $cluster = $null
    if (Test-KernelAvailable) {
        $cluster = Start-ScenarioCluster rbac $TestDrive
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

Describe 'the roles as kubectl auth can-i sees them' -Skip:(-not ($kernel -and (Get-Command kubectl -CommandType Application -ErrorAction SilentlyContinue))) {
    # kubectl posts its SelfSubjectAccessReviews as protobuf, as to a real API server.
    It '<who>: kubectl auth can-i <verb> <resource> (subresource ''<sub>'') says <answer>' -ForEach @(
        @{ who = 'reader'; verb = 'list'; resource = 'nodes'; sub = ''; answer = 'yes' }
        @{ who = 'reader'; verb = 'list'; resource = 'felixconfigurations.crd.projectcalico.org'; sub = ''; answer = 'yes' }
        @{ who = 'reader'; verb = 'create'; resource = 'pods'; sub = 'exec'; answer = 'no' }
        @{ who = 'reader'; verb = 'patch'; resource = 'felixconfigurations.crd.projectcalico.org'; sub = ''; answer = 'no' }
        @{ who = 'operator'; verb = 'create'; resource = 'pods'; sub = 'exec'; answer = 'yes' }
        @{ who = 'operator'; verb = 'patch'; resource = 'felixconfigurations.crd.projectcalico.org'; sub = ''; answer = 'yes' }
        @{ who = 'operator'; verb = 'delete'; resource = 'pods'; sub = ''; answer = 'no' }
        @{ who = 'nobody'; verb = 'list'; resource = 'nodes'; sub = ''; answer = 'no' }
    ) {
        $kubeArgs = @('auth', 'can-i', $verb, $resource, '-n', 'calico-system', '--kubeconfig', $kc[$who])
        if ($sub) { $kubeArgs += "--subresource=$sub" }
        $out = & kubectl @kubeArgs 2>$null
        $out | Should -Be $answer
        $LASTEXITCODE | Should -Be ($answer -eq 'yes' ? 0 : 1)
    }

    It 'kubectl auth can-i --list shows each role''s rules: pods/exec for the operator only' {
        $operator = & kubectl auth can-i --list -n calico-system --kubeconfig $kc.operator 2>&1
        $LASTEXITCODE | Should -Be 0
        @($operator | Where-Object { $_ -match '^pods/exec\s+\[\]\s+\[\]\s+\[create get\]$' }).Count | Should -Be 1
        @($operator | Where-Object { $_ -match '^felixconfigurations\.crd\.projectcalico\.org\s.*\bpatch\b' }).Count | Should -Be 1
        $reader = & kubectl auth can-i --list -n calico-system --kubeconfig $kc.reader 2>&1
        $LASTEXITCODE | Should -Be 0
        @($reader | Where-Object { $_ -match '^pods/exec\s' }).Count | Should -Be 0
        @($reader | Where-Object { $_ -match '^nodes\s.*\[get list\]$' }).Count | Should -Be 1
    }
}
