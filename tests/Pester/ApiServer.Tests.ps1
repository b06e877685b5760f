# The test cluster's API server against the real kubectl: Kubernetes resources, Calico custom
# resources validated with the real CRD schemas, patches, conflicts, RBAC, dry runs, watch, logs,
# exec with stdin. What the module's cluster features are tested against must behave as the real one.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    $script:kubectl = [bool](Get-Command kubectl -CommandType Application -ErrorAction SilentlyContinue)
    if (-not $script:kubectl) { Write-Warning 'kubectl is not on PATH: the API server faithfulness tests are skipped.' }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $cluster = $null
    if ((Test-KernelAvailable) -and (Get-Command kubectl -CommandType Application -ErrorAction SilentlyContinue)) {
        $cluster = Start-TestCluster -Scenario (Join-Path $PSScriptRoot 'resources.yaml') -Directory (Join-Path $TestDrive 'resources')
        $env:KUBECONFIG = $cluster.Kubeconfig
    }

    function Get-Writes {
        (Invoke-RestMethod -SkipCertificateCheck -Uri "$($cluster.Url)/debug/calicobpf/writes" -Headers @{ Authorization = 'Bearer admin-token' }).writes
    }

    function Get-Felix([string] $Name = 'default', [string] $Group = 'crd.projectcalico.org') {
        kubectl get "felixconfigurations.$Group" $Name -o json | ConvertFrom-Json
    }
}

AfterAll {
    Remove-Item Env:KUBECONFIG -ErrorAction SilentlyContinue
    Stop-TestCluster $cluster
}

Describe 'Kubernetes resources through kubectl' -Skip:(-not ($kernel -and $kubectl)) {
    It 'kubectl get prints the server''s tables: pods -A, felixconfigurations, ippools, daemonsets' {
        $pods = kubectl get pods -A
        $pods[0] | Should -Match '^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$'
        ($pods | Select-Object -Skip 1 | ForEach-Object { ($_ -split '\s+')[1] }) -like 'web-*' | Should -Be @('web-1', 'web-2')
        $felix = kubectl get felixconfigurations
        $felix[0] | Should -Match '^NAME\s+AGE$'
        ($felix | Select-Object -Skip 1 | ForEach-Object { ($_ -split '\s+')[0] }) | Should -Be @('default', 'node.api-a')
        (kubectl get ippools.crd.projectcalico.org)[0] | Should -Match '^NAME\s+AGE$'
        # The v3 CRD has printer columns of its own.
        (kubectl get ippools.projectcalico.org)[1] | Should -Match '^default-ipv4-ippool\s+192\.168\.0\.0/16\s+CrossSubnet\s+true'
        (kubectl get ds -n kube-system kube-proxy -o jsonpath='{.status.desiredNumberScheduled}') | Should -Be '1'
        kubectl get installation default -o jsonpath='{.spec.calicoNetwork.linuxDataplane}' | Should -Be 'BPF'
    }

    It 'services have EndpointSlices made from the pods their selector matches' {
        $slice = (kubectl get endpointslices -n shop -l kubernetes.io/service-name=web -o json | ConvertFrom-Json).items
        $slice.endpoints.addresses | Should -Be @('192.168.1.5', '192.168.1.6')
        $slice.endpoints.targetRef.name | Should -Be @('web-1', 'web-2')
        (kubectl get svc -n shop web -o jsonpath='{.spec.clusterIP}') | Should -Be '10.96.0.20'
        (kubectl get cm -n tigera-operator kubernetes-services-endpoint -o jsonpath='{.data.KUBERNETES_SERVICE_HOST}') | Should -Be '172.18.2.10'
        (kubectl get pods -n calico-system -o json | ConvertFrom-Json).items[0].metadata.ownerReferences.kind | Should -Be 'DaemonSet'
    }

    It 'one FelixConfiguration seen through both groups; a merge patch in one shows in the other' {
        kubectl patch felixconfigurations.projectcalico.org default --type merge -p '{"spec":{"bpfLogLevel":"Debug"}}' | Should -Match 'patched'
        (Get-Felix default crd.projectcalico.org).spec.bpfLogLevel | Should -Be 'Debug'
        (Get-Felix default projectcalico.org).apiVersion | Should -Be 'projectcalico.org/v3'
        kubectl patch felixconfigurations.crd.projectcalico.org default --type json -p '[{"op":"replace","path":"/spec/bpfLogLevel","value":"Info"},{"op":"add","path":"/spec/bpfKubeProxyMinSyncPeriod","value":"5s"}]' | Should -Match 'patched'
        $f = Get-Felix
        ($f.spec.bpfLogLevel, $f.spec.bpfKubeProxyMinSyncPeriod) | Should -Be @('Info', '5s')
        kubectl patch felixconfigurations.crd.projectcalico.org default --type json -p '[{"op":"remove","path":"/spec/bpfKubeProxyMinSyncPeriod"}]' | Should -Match 'patched'
        (Get-Felix).spec.PSObject.Properties.Name | Should -Not -Contain 'bpfKubeProxyMinSyncPeriod'
    }

    It 'a write the CRD schema refuses is a 422 naming the field, and nothing is stored' {
        $before = Get-Felix
        $writes = Get-Writes
        $out = kubectl patch felixconfigurations.crd.projectcalico.org default --type merge -p '{"spec":{"bpfLogLevel":"Verbose","bpfAttachType":"XDP"}}' 2>&1
        $LASTEXITCODE | Should -Not -Be 0
        # kubectl lists the Status's causes one per line.
        "$out" | Should -Match ([regex]::Escape('The FelixConfiguration "default" is invalid:'))
        "$out" | Should -Match ([regex]::Escape(@'
spec.bpfLogLevel: Invalid value: "Verbose": spec.bpfLogLevel in body should match '^(?i)(Off|Info|Debug)?$'
'@.Trim()))
        "$out" | Should -Match ([regex]::Escape('spec.bpfAttachType: Unsupported value: "XDP": supported values: "TC", "TCX", "Netkit"'))
        (Get-Felix).metadata.resourceVersion | Should -Be $before.metadata.resourceVersion
        Get-Writes | Should -Be $writes
    }

    It 'a stale resourceVersion is a 409 Conflict, for patch and for replace' {
        $f = Get-Felix
        kubectl patch felixconfigurations.crd.projectcalico.org default --type merge -p '{"spec":{"bpfLogLevel":"Debug"}}' | Should -Match 'patched'
        $stale = @{ metadata = @{ resourceVersion = $f.metadata.resourceVersion }; spec = @{ bpfLogLevel = 'Info' } } | ConvertTo-Json -Compress
        $out = kubectl patch felixconfigurations.crd.projectcalico.org default --type merge -p $stale 2>&1
        "$out" | Should -Match 'Conflict.*the object has been modified; please apply your changes to the latest version'
        $file = Join-Path $TestDrive 'stale.json'
        $f | ConvertTo-Json -Depth 10 | Set-Content $file
        $out = kubectl replace -f $file 2>&1
        "$out" | Should -Match 'Conflict'
        (Get-Felix).spec.bpfLogLevel | Should -Be 'Debug'
        # The current version replaces.
        $f = Get-Felix
        $f.spec.bpfLogLevel = 'Info'
        $f | ConvertTo-Json -Depth 10 | Set-Content $file
        kubectl replace -f $file | Should -Match 'replaced'
    }

    It 'create, AlreadyExists, delete; strategic merge is refused for custom resources' {
        $file = Join-Path $TestDrive 'node-x.yaml'
        "apiVersion: crd.projectcalico.org/v1`nkind: FelixConfiguration`nmetadata:`n  name: node.x`nspec:`n  bpfLogLevel: Debug" | Set-Content $file
        kubectl create -f $file | Should -Match 'created'
        "$(kubectl create -f $file 2>&1)" | Should -Match 'AlreadyExists|already exists'
        "$(kubectl patch felixconfigurations.crd.projectcalico.org node.x -p '{"spec":{"bpfLogLevel":"Info"}}' 2>&1)" | Should -Match 'strategic-merge-patch\+json is not supported'
        kubectl delete felixconfigurations.crd.projectcalico.org node.x | Should -Match 'deleted'
        "$(kubectl get felixconfigurations.crd.projectcalico.org node.x 2>&1)" | Should -Match 'NotFound.*"node.x" not found'
    }

    It 'fields the CRD does not know are pruned with a warning, as fieldValidation=Warn does' {
        $out = kubectl patch felixconfigurations.crd.projectcalico.org default --type merge -p '{"spec":{"bpfKubeProxyEndpointSlicesEnabled":true}}' 2>&1
        "$out" | Should -Match 'unknown field "spec.bpfKubeProxyEndpointSlicesEnabled"'
        (Get-Felix).spec.PSObject.Properties.Name | Should -Not -Contain 'bpfKubeProxyEndpointSlicesEnabled'
    }

    It 'a server-side dry run validates but writes nothing' {
        $writes = Get-Writes
        kubectl patch felixconfigurations.crd.projectcalico.org default --type merge --dry-run=server -p '{"spec":{"bpfLogLevel":"Off"}}' | Should -Match 'patched'
        (Get-Felix).spec.bpfLogLevel | Should -Not -Be 'Off'
        "$(kubectl patch felixconfigurations.crd.projectcalico.org default --type merge --dry-run=server -p '{"spec":{"bpfLogLevel":"Loud"}}' 2>&1)" | Should -Match 'is invalid'
        Get-Writes | Should -Be $writes
    }

    It 'the read-only identity may read but not write, with RBAC''s wording' {
        (kubectl --kubeconfig $cluster.ReadonlyKubeconfig get felixconfigurations -o name) | Should -Contain 'felixconfiguration.crd.projectcalico.org/default'
        $out = kubectl --kubeconfig $cluster.ReadonlyKubeconfig patch felixconfigurations.crd.projectcalico.org default --type merge -p '{"spec":{"bpfLogLevel":"Debug"}}' 2>&1
        "$out" | Should -Match ([regex]::Escape('felixconfigurations.crd.projectcalico.org "default" is forbidden: User "system:serviceaccount:default:readonly" cannot patch resource "felixconfigurations" in API group "crd.projectcalico.org" at the cluster scope'))
    }

    It 'watch streams changes as they happen' {
        $out = Join-Path $TestDrive 'watch.txt'
        $watcher = Start-Process kubectl -ArgumentList 'get', 'felixconfigurations.crd.projectcalico.org', '--watch-only', '--output-watch-events' -RedirectStandardOutput $out -PassThru
        try {
            Start-Sleep -Milliseconds 1500
            kubectl patch felixconfigurations.crd.projectcalico.org node.api-a --type merge -p '{"spec":{"bpfLogLevel":"Debug"}}' | Should -Match 'patched'
            $deadline = [DateTime]::UtcNow.AddSeconds(10)
            while ([DateTime]::UtcNow -lt $deadline -and -not ((Get-Content $out -Raw -ErrorAction SilentlyContinue) -match 'MODIFIED\s+node')) { Start-Sleep -Milliseconds 200 }
        }
        finally {
            $watcher | Stop-Process -Force -ErrorAction SilentlyContinue
        }

        (Get-Content $out) -match '^MODIFIED\s+node\.api-a\s' | Should -HaveCount 1
    }

    It 'logs with --tail, --since-time and -c; exec -i passes stdin and ends on v5''s close signal' {
        $pod = kubectl get pods -n calico-system -o name
        (kubectl logs -n calico-system $pod --tail 1) | Should -Match 'later line$'
        @(kubectl logs -n calico-system $pod --since-time '2026-11-26T05:30:00Z').Count | Should -Be 1
        "$(kubectl logs -n calico-system $pod -c nope 2>&1)" | Should -Match 'container nope is not valid for pod'
        'hello from stdin' | kubectl exec -i -n calico-system $pod -- cat | Should -Be 'hello from stdin'
    }
}

Describe 'A manifest install on Calico v3.28 CRDs' -Skip:(-not ($kernel -and $kubectl)) {
    BeforeAll {
        $old = Start-TestCluster -Scenario (Join-Path $PSScriptRoot 'manifest-v328.yaml') -Directory (Join-Path $TestDrive 'old')
    }

    AfterAll { Stop-TestCluster $old }

    It 'serves the real calico-bpf.yaml DaemonSet in kube-system, with FELIX_BPFENABLED' {
        $ds = kubectl --kubeconfig $old.Kubeconfig get ds -n kube-system calico-node -o json | ConvertFrom-Json
        $env = $ds.spec.template.spec.containers | Where-Object name -eq 'calico-node' | ForEach-Object env
        ($env | Where-Object name -eq 'FELIX_BPFENABLED').value | Should -Be 'true'
        ($ds.spec.template.spec.containers | Where-Object name -eq 'calico-node').image | Should -BeLike '*calico/node:v3.28.5'
        "$(kubectl --kubeconfig $old.Kubeconfig get felixconfigurations.projectcalico.org 2>&1)" | Should -Match "doesn't have a resource type|the server doesn't have"
    }

    It 'keeps fields its older CRD still has' {
        $f = kubectl --kubeconfig $old.Kubeconfig get felixconfigurations default -o json | ConvertFrom-Json
        $f.spec.bpfKubeProxyEndpointSlicesEnabled | Should -BeTrue
    }
}
