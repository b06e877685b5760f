# Cluster mode against the test cluster: a Kubernetes API server whose nodes are real below the API.
# (The test cluster against kubectl is tests/CalicoBpf.TestCluster.Tests.)
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
}

BeforeAll {
    $manifestPath = Import-ModuleUnderTest -PassThru
    $cluster = $null
    if (Test-KernelAvailable) {
        $cluster = Start-TestCluster -Scenario (Join-Path $PSScriptRoot '../../demo/cluster.yaml') -Directory $TestDrive
        $PSDefaultParameterValues['*:Kubeconfig'] = $cluster.Kubeconfig
    }
}

AfterAll {
    $PSDefaultParameterValues.Remove('*:Kubeconfig')
    [CalicoBpf.Cluster.ClusterConnections]::Reset()
    Stop-TestCluster $cluster
}

Describe 'Cluster mode' -Skip:(-not $kernel) {
    It 'Get-CalicoNode finds every node and its calico-node pod by label' {
        $nodes = @(Get-CalicoNode)
        $nodes.Node | Should -Be @('node-a', 'node-b', 'node-c', 'node-d')
        $a = $nodes | Where-Object Node -eq 'node-a'
        $a | Should -BeOfType ([CalicoBpf.CalicoNode])
        ($a.Namespace, $a.CalicoVersion, $a.OperatorManaged, $a.PodReady, $a.KernelVersion) | Should -Be @('calico-system', 'v3.30.7', $true, $true, '6.8.0-1015-aws')
        $a.ProviderId | Should -BeLike 'aws:///*'
        ($nodes | Where-Object Node -eq 'node-d').HasCalicoNode | Should -BeFalse
    }

    It 'a remote object equals the local one field for field, except Node and the clock' {
        $pins = "/tmp/cbk-$($cluster.RunId)-node-a/bpffs/tc/globals"
        $pins | Should -Exist
        # PinPath: where the node pins the map, against where this machine sees that directory.
        $skip = 'Node', 'PinPath', 'Age', 'LastSeen', 'ResetSeen', 'Created'
        function Fields($o) { ($o.PSObject.Properties | Where-Object Name -notin $skip | Sort-Object Name | ForEach-Object { "$($_.Name)=$(if ($_.Value -is [byte[]]) { [Convert]::ToHexString($_.Value) } else { "$($_.Value)" })" }) -join '|' }
        # Remotely the calico-node image names the release (v3.30.7); locally the pins narrow it to v3.30,
        # so the same release given locally gives the same objects.
        $remote = @(Get-BpfConntrack -Node node-a | ForEach-Object { Fields $_ } | Sort-Object)
        $local = @(Get-BpfConntrack -PinPath $pins -CalicoVersion v3.30.7 | ForEach-Object { Fields $_ } | Sort-Object)
        $remote.Count | Should -Be 141
        $remote | Should -Be $local
        (Get-BpfConntrack -Node node-a | Select-Object -First 1).Release | Should -Be 'v3.30.7'
        (Get-BpfMap -Node node-a cali_v4_ct3).CalicoRelease.Source | Should -Be 'Image'
        (Get-BpfMap -PinPath $pins cali_v4_ct3).CalicoRelease.Source | Should -Be 'PinnedMaps'
        # Interface names come from the node's own network namespace (here the host's differ).
        $skip += 'Interface'
        (Get-BpfCounter -Node node-a | ForEach-Object { Fields $_ }) | Should -Be (Get-BpfCounter -PinPath $pins | ForEach-Object { Fields $_ })
        (Get-BpfCounter -Node node-a).Interface | Sort-Object -Unique | Should -Be @('eth0', 'vxlan.calico')
        (Get-BpfNat -Node node-a -Address 10.96.0.10).Backends.Address | Should -Be @('10.65.0.5', '10.65.2.9')
    }

    It 'Get-BpfConntrackStatistic counts a remote table as the local read does, and as its entries count; one object per node' {
        $pins = "/tmp/cbk-$($cluster.RunId)-node-a/bpffs/tc/globals"
        $skip = 'Node', 'PinPath'
        function Fields($o) { ($o.PSObject.Properties | Where-Object Name -notin $skip | Sort-Object Name | ForEach-Object { "$($_.Name)=$($_.Value)" }) -join '|' }
        $remote = @(Get-BpfConntrackStatistic -Node node-a)
        $remote.Count | Should -Be 1
        $remote[0] | Should -BeOfType ([CalicoBpf.ConntrackStatistic])
        ($remote[0].Node, $remote[0].MapName, $remote[0].Entries, $remote[0].Release) | Should -Be @('node-a', 'cali_v4_ct3', 141, 'v3.30.7')
        $remote[0].PinPath | Should -Be '/sys/fs/bpf/tc/globals'
        Fields $remote[0] | Should -Be (Fields (Get-BpfConntrackStatistic -PinPath $pins -CalicoVersion v3.30.7))
        # The counts are calico-bpf's rule over the entries Get-BpfConntrack decodes from the same node.
        $entries = @(Get-BpfConntrack -Node node-a)
        $connections = @($entries | Where-Object Type -ne 'NatForward')
        $tcp = @($connections | Where-Object Protocol -eq 'Tcp')
        ($remote[0].NatConnections, $remote[0].Connections, $remote[0].Tcp, $remote[0].Udp) |
            Should -Be @(($entries.Count - $connections.Count), $connections.Count, $tcp.Count, @($connections | Where-Object Protocol -eq 'Udp').Count)
        ($remote[0].TcpEstablished, $remote[0].TcpClosed, $remote[0].TcpReset, $remote[0].TcpSynSent) |
            Should -Be @('Established', 'Closed', 'Reset', 'SynSent' | ForEach-Object { $s = $_; @($tcp | Where-Object State -eq $s).Count })
        # -Node *: one object per node that can be read, node-c's failure one error.
        $all = @(Get-BpfConntrackStatistic -Node * -ErrorVariable errs -ErrorAction SilentlyContinue | Sort-Object Node)
        ($all | ForEach-Object { "$($_.Node)=$($_.Entries)" }) -join ' ' | Should -Be 'node-a=141 node-b=30'
        $errs.Count | Should -Be 1
        $errs[0].TargetObject | Should -Be 'node-c'
        Get-CalicoNode | Where-Object Node -eq node-b | Get-BpfConntrackStatistic | ForEach-Object Node | Should -Be 'node-b'
    }

    It '-Node * reads every node running calico-node in parallel; a broken node is one error and the others complete' {
        $objects = @(Get-BpfConntrack -Node * -ThrottleLimit 2 -ErrorVariable errs -ErrorAction SilentlyContinue)
        ($objects | Group-Object Node -NoElement | ForEach-Object { "$($_.Name)=$($_.Count)" }) -join ' ' | Should -Be 'node-a=141 node-b=30'
        $errs.Count | Should -Be 1
        $errs[0].TargetObject | Should -Be 'node-c'
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'NoBpfFs,*'
        "$($errs[0])" | Should -Match 'node-c.*eBPF mode'
    }

    It 'a name that matches nothing on a node is an error for that node, as locally (never silence)' {
        $found = @(Get-BpfCounter -Node node-a, node-b -Interface nope -ErrorVariable errs -ErrorAction SilentlyContinue)
        $found | Should -BeNullOrEmpty
        @($errs | ForEach-Object { $_.FullyQualifiedErrorId -replace ',.*' }) | Should -Be @('InterfaceNotFound', 'InterfaceNotFound')
        @($errs | ForEach-Object { "$_" -replace ':.*' }) | Should -Be @('node-a', 'node-b')
        "$($errs[0])" | Should -Match 'Calico keeps no counters for interface nope'
        # On a node that has it, the name is found; only the other is reported; a wildcard is a filter.
        $eth = @(Get-BpfCounter -Node node-a, node-b -Interface vxlan.calico -ErrorVariable errs2 -ErrorAction SilentlyContinue)
        @($eth.Node | Sort-Object -Unique) | Should -Be @('node-a')
        @($errs2 | ForEach-Object { "$_" -replace ':.*' }) | Should -Be @('node-b')
        $null = Get-BpfCounter -Node node-a -Interface nope* -ErrorVariable errs3 -ErrorAction SilentlyContinue
        $errs3 | Should -BeNullOrEmpty
    }

    It '-Resolve names pods and services from one pod list and one service list per run' {
        function Get-Requests { Invoke-RestMethod -SkipCertificateCheck -Uri "$($cluster.Url)/debug/calicobpf/requests" -Headers @{ Authorization = 'Bearer admin-token' } }
        $before = Get-Requests
        $all = @(Get-BpfConntrack -Node * -Resolve -ErrorAction SilentlyContinue)
        $after = Get-Requests
        ($after.'GET /api/v1/services' - [int]$before.'GET /api/v1/services') | Should -Be 1
        # One pod list finds the calico-node pods, one names the workloads: none per node or entry.
        ($after.'GET /api/v1/pods' - [int]$before.'GET /api/v1/pods') | Should -Be 2
        $all.Count | Should -Be 171
        $dns = $all | Where-Object { $_.SourcePort -eq 41000 }
        ($dns | Where-Object Type -eq 'NatReverse' | ForEach-Object { $_.SourcePod, $_.DestinationPod, $_.Service }) |
            Should -Be @('shop/frontend-7d4b9c-x2k8p', 'kube-system/coredns-5d78c9869d-q7v2r', 'kube-system/kube-dns')
        # A NatForward entry names the backend it was sent to, through its reverse key.
        ($dns | Where-Object Type -eq 'NatForward').DestinationPod | Should -Be 'kube-system/coredns-5d78c9869d-q7v2r'
        $direct = $all | Where-Object { $_.SourcePort -eq 41004 }
        ($direct.Service, $direct.DestinationPod) | Should -Be @('', 'shop/cart-6f5c8b7d9-m4n7t')
        ($all | Where-Object Service | Group-Object Service -NoElement | ForEach-Object { "$($_.Name)=$($_.Count)" }) -join ' ' | Should -Be 'kube-system/kube-dns=2 shop/cart=2'
        $text = $dns | Out-String -Width 200
        # The resolved entries carry a type name of their own, whose table shows names for addresses.
        $dns[0].PSObject.TypeNames[0] | Should -Be 'CalicoBpf.ConntrackEntry#Resolved'
        $text | Should -Match 'shop/frontend-7d4b9c-x2k8p\s+kube-system/kube-dns\s+kube-system/coredns-5d78c9869d-q7v2r\s+NatReverse'
        $text | Should -Match 'kube-system/kube-dns\s+kube-system/coredns-5d78c9869d-q7v2r\s+NatForward'
    }

    It '-Pod, -Namespace and -Service return exactly what -Resolve and Where-Object would' {
        $all = @(Get-BpfConntrack -Node node-a -Resolve)
        $expect = @($all | Where-Object { $_.SourcePod -like 'shop/frontend-*' -or $_.DestinationPod -like 'shop/frontend-*' })
        $expect.Count | Should -Be 5
        @(Get-BpfConntrack -Node node-a -Pod shop/frontend-*).Count | Should -Be 5
        @(Get-BpfConntrack -Node node-a -Pod 'frontend-7d4b9c-x2k8p').Count | Should -Be 5
        $ns = @($all | Where-Object { ($_.SourcePod, $_.DestinationPod, $_.Service) -like 'kube-system/*' })
        @(Get-BpfConntrack -Node node-a -Namespace kube-system).Count | Should -Be $ns.Count
        @(Get-BpfConntrack -Node node-a -Service shop/cart).Type | Sort-Object | Should -Be @('NatForward', 'NatReverse')
        @(Get-BpfConntrack -Node node-a -Service cart -Pod frontend-*).Count | Should -Be 2
        @(Get-BpfConntrack -Node node-a -Pod nobody -WarningVariable warn -WarningAction SilentlyContinue).Count | Should -Be 0
        "$warn" | Should -Match 'No pod of the cluster matches -Pod nobody'
    }

    It 'Get-BpfNat -Resolve names the service of a frontend and the pod of each backend, and filters by them' {
        $fe = Get-BpfNat -Node node-a -Resolve -Address 10.96.0.10
        $fe.Service | Should -Be 'kube-system/kube-dns'
        $fe.Backends.Pod | Should -Be @('kube-system/coredns-5d78c9869d-h2x9w', 'kube-system/coredns-5d78c9869d-q7v2r')
        @(Get-BpfNat -Node node-a -Service kube-system/kube-dns).Count | Should -Be 1
        @(Get-BpfNat -Node node-a -Pod 'coredns-*-q7v2r').Count | Should -Be 1
        (Get-BpfNat -Node node-a -Namespace shop).Service | Should -Be 'shop/cart'
        @(Get-BpfNat -Node node-a -Namespace nowhere -WarningAction SilentlyContinue).Count | Should -Be 0
    }

    It 'resolves in local mode too, with the same names as remotely' {
        $pins = "/tmp/cbk-$($cluster.RunId)-node-a/bpffs/tc/globals"
        $names = { process { "$($_.Source)|$($_.Type)|$($_.SourcePod)|$($_.DestinationPod)|$($_.Service)" } }
        $local = @(Get-BpfConntrack -PinPath $pins -Resolve | & $names | Sort-Object)
        $remote = @(Get-BpfConntrack -Node node-a -Resolve | & $names | Sort-Object)
        $local | Should -Be $remote
        ($local -like '*|shop/cart').Count | Should -Be 2
    }

    It 'in a pod, the service account is used: no kubeconfig needed' {
        # A pod sees its token, CA and namespace under /var/run/secrets/kubernetes.io/serviceaccount and
        # the API server in KUBERNETES_SERVICE_HOST/PORT. A private mount namespace gives a child pwsh
        # exactly that (a tmpfs over /run, so nothing is written on the host), and no kubeconfig at all.
        $sa = Join-Path $TestDrive 'serviceaccount'
        $null = New-Item -ItemType Directory -Force $sa, (Join-Path $TestDrive 'home')
        [IO.File]::WriteAllText((Join-Path $sa 'token'), 'readonly-token')
        [IO.File]::WriteAllText((Join-Path $sa 'namespace'), 'default')
        $caData = ((Get-Content $cluster.Kubeconfig) -match 'certificate-authority-data:') -replace '^.*certificate-authority-data:\s*', ''
        [IO.File]::WriteAllBytes((Join-Path $sa 'ca.crt'), [Convert]::FromBase64String($caData.Trim()))
        $script = Join-Path $TestDrive 'in-pod.ps1'
        Set-Content $script "`$ErrorActionPreference = 'Stop'; Import-Module '$(Get-ModuleUnderTest)'; (Get-CalicoNode).Node -join ','; (Get-CalicoNode)[0].Context"
        $mount = "mount -t tmpfs pod-run /run && mkdir -p /run/secrets/kubernetes.io/serviceaccount && cp '$sa'/* /run/secrets/kubernetes.io/serviceaccount/"
        $out = & unshare --mount --propagation private sh -c "$mount && exec env -u KUBECONFIG HOME='$TestDrive/home' KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$(([uri]$cluster.Url).Port) '$(Join-Path $PSHOME 'pwsh')' -NoProfile -NonInteractive -File '$script'" 2>&1
        $LASTEXITCODE | Should -Be 0 -Because "$out"
        ($out -join "`n") | Should -Be "node-a,node-b,node-c,node-d`nin-cluster"
    }

    It 'names missing nodes and nodes without calico-node' {
        $null = Get-BpfCounter -Node node-d, node-x -ErrorVariable errs -ErrorAction SilentlyContinue
        ($errs.FullyQualifiedErrorId | ForEach-Object { ($_ -split ',')[0] } | Sort-Object) | Should -Be @('NoCalicoNodePod', 'NodeNotFound')
        # Wildcards that match nothing (or only nodes without calico-node) say so, as a warning.
        $null = Get-BpfCounter -Node node-z*, node-d* -WarningVariable warned -WarningAction SilentlyContinue -ErrorAction Stop
        @($warned).Count | Should -Be 2
        "$($warned[0])" | Should -Be 'No node of the cluster matches -Node node-z*. Get-CalicoNode lists them.'
        "$($warned[1])" | Should -Match 'No node that matches -Node node-d\* runs calico-node'
        $null = Get-BpfCounter -Node node-a* -WarningVariable quiet -WarningAction SilentlyContinue
        @($quiet).Count | Should -Be 0
    }

    It 'reads a node''s qdiscs through tc in calico-node' {
        $q = @(Get-BpfQdiscStatistic -Node node-a -Kind clsact)
        ($q.Interface | Sort-Object) | Should -Be @('cali7f3a1b2c9d0', 'eth0', 'vxlan.calico')
        $q[0] | Should -BeOfType ([CalicoBpf.QdiscStatistic])
        $q[0].Node | Should -Be 'node-a'
        $q[0].Parent | Should -Be 'ffff:fff1'
    }

    It 'reads policy debug info and hit counts from calico-node''s files' {
        $rules = @(Get-BpfPolicy -Node node-a)
        $rules.Count | Should -Be 3
        ($rules | Where-Object Action -eq 'deny' | Select-Object -First 1).HitCount | Should -Be 7
        $rules[0].Node | Should -Be 'node-a'
        (Get-BpfPolicy -Node node-b)[0].Policy | Should -Be 'shop/knp.default.cart-from-frontend'
        $null = Get-BpfPolicy -Node node-b -PolicyDebugPath /var/run/calico/bpf/none -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'NoPolicyDebugInfo,*'
        $errs[0].TargetObject | Should -Be 'node-b'
    }

    It 'reads the kernel trace buffer through calico-node, which has no tracefs until bpftool mounts it' {
        $kc = $cluster.Kubeconfig
        $pod = (kubectl --kubeconfig $kc get pods -n calico-system -o json | ConvertFrom-Json).items | Where-Object { $_.spec.nodeName -eq 'node-a' } | Select-Object -First 1
        function Mounted { kubectl --kubeconfig $kc exec -n calico-system $pod.metadata.name -c calico-node -- sh -c 'grep -c tracefs /proc/mounts || true' }
        # As in a real calico-node container: neither the manifest nor the operator mounts tracefs, so the
        # buffer cannot be read without consuming it, and the error says how to get there.
        Mounted | Should -Be '0'
        $null = Get-BpfTraceLog -Node node-a -Last 5 -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'NoTraceFs,*'
        "$($errs[0])" | Should -Match 'no tracefs mounted.*-Follow streams it through bpftool prog tracelog'

        # -Follow streams through bpftool, which mounts tracefs in the container.
        $mark = "cbpf-mark-$PID-$([guid]::NewGuid().ToString('N').Substring(0, 8))"
        Add-TraceMark $mark
        try {
            $line = Get-BpfTraceLog -Node node-a -Follow -TimeoutSec 30 | Where-Object Message -match $mark | Select-Object -First 1
            $line.Node | Should -Be 'node-a'
            # Lines of many nodes mix in one stream: the table says whose each is, and when, with the date.
            $row = ($line | Out-String -Width 160) -split "`n" | Where-Object { $_ -match $mark }
            $row | Should -Match ('^' + [regex]::Escape($line.Time.ToString('yyyy-MM-dd HH:mm:ss.ffffff', [cultureinfo]::InvariantCulture)) + ' +node-a ')
        }
        finally {
            # The follow ended when Select-Object had its line; its bpftool must end with it, though the
            # node's kubelet kills nothing: a bpftool left reading the pipe would eat the lines of every
            # later read of the buffer.
            $left = Wait-NodeIdle $cluster node-a
        }
        $left | Should -BeNullOrEmpty

        # What it changed in the container: bpftool's tracefs mount, which stays as bpftool's own would;
        # from then on the buffer is read without consuming it.
        Mounted | Should -Be '1'
        $second = "cbpf-mark2-$PID"
        Add-TraceMark $second
        @(Get-BpfTraceLog -Node node-a | Where-Object Message -match $second).Count | Should -Be 1
    }

    It 'a -Follow stream gives every line of a burst to a pipeline slower than the node, then waits for more' {
        # The pipeline is the slower side here, so the node's lines are handed over in chunks; the last,
        # partial one must come out when the queue runs empty, not wait for a line that may never come.
        # 120 short lines: more than the queue holds singly (64), and within a trace buffer not yet
        # expanded (7 KB a CPU on a machine booted minutes ago), which keeps only its newest lines.
        $burst = "b$PID"
        $n = 120
        Add-TraceMark $burst -Count $n
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$manifestPath'").Invoke()
        $ps.Commands.Clear()
        $out = [System.Management.Automation.PSDataCollection[psobject]]::new()
        $null = $ps.AddScript("Get-BpfTraceLog -Node node-a -Follow -Kubeconfig '$($cluster.Kubeconfig)' | ForEach-Object { Start-Sleep -Milliseconds 5; `$_ } | Where-Object Message -like '$burst-*' | ForEach-Object Message")
        $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $out)
        try {
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while ($out.Count -lt $n -and [DateTime]::UtcNow -lt $deadline -and -not $async.IsCompleted) { Start-Sleep -Milliseconds 50 }
            # By index: enumerating a PSDataCollection that is still open waits for it to complete.
            $lines = @(for ($i = 0; $i -lt $out.Count; $i++) { "$($out[$i])" })
            $errors = @(for ($i = 0; $i -lt $ps.Streams.Error.Count; $i++) { "$($ps.Streams.Error[$i])" })
            $lines.Count | Should -Be $n -Because "every line arrives while the stream stays open ($($errors -join '; '))"
            $lines[0] | Should -Be "$burst-1"
            $lines[-1] | Should -Be "$burst-$n"
            @($lines | ForEach-Object { [int]($_ -replace '.*-', '') }) | Should -Be (1..$n) -Because 'a node''s lines keep their order'
            $async.IsCompleted | Should -BeFalse -Because '-Follow goes on after the burst'
        }
        finally {
            $ps.Stop()
            $ps.Dispose()
            $left = Wait-NodeIdle $cluster node-a
        }
        $left | Should -BeNullOrEmpty
    }

    It 'a -Follow stream stays open through a quiet trace pipe longer than -TimeoutSec, and gives the next line' {
        # A quiet pipe is the normal case: the node's side sends a blank line a second, which the session's
        # silence watch sees and the stream drops; without it the watch closed the session after -TimeoutSec.
        $ps = [powershell]::Create()
        $null = $ps.AddScript("Import-Module '$manifestPath'").Invoke()
        $ps.Commands.Clear()
        $out = [System.Management.Automation.PSDataCollection[psobject]]::new()
        $mark = "quiet$PID-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $null = $ps.AddScript("Get-BpfTraceLog -Node node-a -Follow -TimeoutSec 2 -Kubeconfig '$($cluster.Kubeconfig)' | Where-Object Message -like '$mark*' | ForEach-Object Message")
        $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $out)
        try {
            Start-Sleep -Seconds 6
            $errors = @(for ($i = 0; $i -lt $ps.Streams.Error.Count; $i++) { "$($ps.Streams.Error[$i])" })
            $errors | Should -BeNullOrEmpty -Because 'three times -TimeoutSec of a quiet pipe is no fault of the node'
            $async.IsCompleted | Should -BeFalse
            Add-TraceMark $mark
            $deadline = [DateTime]::UtcNow.AddSeconds(20)
            while ($out.Count -lt 1 -and [DateTime]::UtcNow -lt $deadline -and -not $async.IsCompleted) { Start-Sleep -Milliseconds 50 }
            $errors = @(for ($i = 0; $i -lt $ps.Streams.Error.Count; $i++) { "$($ps.Streams.Error[$i])" })
            $out.Count | Should -Be 1 -Because "the line written after the quiet arrives ($($errors -join '; '))"
            "$($out[0])" | Should -Be $mark
        }
        finally {
            $ps.Stop()
            $ps.Dispose()
            $left = Wait-NodeIdle $cluster node-a
        }
        $left | Should -BeNullOrEmpty -Because 'the reader and its keep-alive loop end with the stream'
    }

    It 'lists a node''s connect-time programs through bpftool in calico-node, as the local read does' {
        $cgroupRoot = Get-TestCgroupRoot
        if (-not $cgroupRoot) { if ($env:CI -eq 'true') { throw 'no cgroup v2 mount' }; Set-ItResult -Skipped -Because 'no cgroup v2 hierarchy is mounted'; return }
        # node-a mounts the same cgroup2 hierarchy at /run/calico/cgroup, and its /sys/fs/bpf is this bpffs.
        $leaf = "calicobpf-cluster-$PID"
        $cgroup = Join-Path $cgroupRoot $leaf
        $links = Join-Path ([IO.Path]::GetTempPath()) "cbk-$($cluster.RunId)-node-a/bpffs/ctlb"
        $null = New-Item -ItemType Directory $cgroup, $links -Force
        try {
            [CalicoBpf.Interop.BpfPrograms]::AttachAllowAllToCgroup($cgroup, [uint][CalicoBpf.CgroupAttachType]::Connect4, 'calico_connect_', (Join-Path $links 'calico_connect_v4'))
            $local = @(Get-BpfConnectTimeProgram -CgroupPath $cgroup -LinkPath $links)
            $remote = @(Get-BpfConnectTimeProgram -Node node-a -CgroupPath "/run/calico/cgroup/$leaf")
            $remote.Count | Should -Be 1
            $remote[0].Node | Should -Be 'node-a'
            $remote[0].Cgroup | Should -Be "/run/calico/cgroup/$leaf"
            $remote[0].LinkPath | Should -Be '/sys/fs/bpf/ctlb/calico_connect_v4'
            foreach ($p in 'AttachType', 'ProgramId', 'Name', 'Tag', 'IsCalico') { $remote[0].$p | Should -Be $local[0].$p -Because $p }
            # bpftool gives load times to the second and converts the boot clock itself.
            [math]::Abs(($remote[0].Loaded - $local[0].Loaded).TotalSeconds) | Should -BeLessOrEqual 1
            $null = Get-BpfConnectTimeProgram -Node node-a -CgroupPath /run/calico/cgroup/no-such -ErrorVariable errs -ErrorAction SilentlyContinue
            $errs.Count | Should -Be 1
            $errs[0].Exception.Message | Should -BeLike '*/run/calico/cgroup/no-such does not exist on node node-a*'
        } finally {
            Remove-TestCgroup $cgroup $links
        }
    }

    It 'takes Node from the pipeline' {
        (Get-CalicoNode node-b | Get-BpfMap cali_v4_ct3).Entries | Should -Be 30
    }

    It 'a read-only identity lists nodes but is refused exec, as one error per node' {
        @(Get-CalicoNode -Kubeconfig $cluster.ReadonlyKubeconfig).Count | Should -Be 4
        $null = Get-BpfMap -Node node-a, node-b -Kubeconfig $cluster.ReadonlyKubeconfig -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs.Count | Should -Be 2
        $errs | ForEach-Object { $_.FullyQualifiedErrorId | Should -BeLike 'ClusterForbidden,*'; $_.CategoryInfo.Category | Should -Be 'PermissionDenied' }
    }

    It 'Ctrl+C stops a remote dump and leaves no command running on the node' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$manifestPath'; Get-BpfConntrack -Node node-a -Kubeconfig '$($cluster.Kubeconfig)' | ForEach-Object { Start-Sleep -Milliseconds 50; `$_ }")
            $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $null = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $output)
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while ($output.Count -lt 2 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
            $output.Count | Should -BeGreaterOrEqual 2
            $sw = [Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $output.Count | Should -BeLessThan 136
            # The exec session closed with the pipeline, so the node's dump ended too.
            $deadline = [DateTime]::UtcNow.AddSeconds(10)
            while ((pgrep -f 'bpftool -j map dump pinned /sys/fs/bpf/tc/globals/cali_v4_ct3') -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            @(pgrep -f 'bpftool -j map dump pinned /sys/fs/bpf/tc/globals/cali_v4_ct3').Count | Should -Be 0
        } finally { $ps.Dispose() }
    }

    It 'stops reading every node when a downstream command has enough (Select-Object -First)' {
        $first = @(Get-BpfConntrack -Node * -ThrottleLimit 1 -ErrorAction SilentlyContinue | Select-Object -First 3)
        $first.Count | Should -Be 3
        # The same cmdlet still works afterwards: no worker was left blocked on the queue.
        @(Get-BpfMap -Node node-b cali_v4_ct3).Count | Should -Be 1
    }

    It 'says clearly when the cluster cannot be reached' {
        $bad = Join-Path $TestDrive 'unreachable'
        (Get-Content -Raw $cluster.Kubeconfig) -replace [regex]::Escape($cluster.Url), 'https://127.0.0.1:9' | Set-Content $bad
        { Get-BpfMap -Node * -Kubeconfig $bad -ErrorAction Stop } | Should -Throw -ErrorId 'ClusterUnavailable,CalicoBpf.Commands.GetBpfMapCommand'
    }
}

Describe 'Changes on remote nodes' -Skip:(-not $kernel) {
    BeforeAll {
        function Pins([string] $Node) { "/tmp/cbk-$($cluster.RunId)-$Node/bpffs/tc/globals" }
    }

    It 'every change cmdlet''s -WhatIf leaves the remote node''s maps byte-identical' {
        $pins = "/tmp/cbk-$($cluster.RunId)-node-a/bpffs/tc/globals"
        $before = Get-PinHash $pins
        Remove-BpfConntrack -Node node-a -Protocol Udp -WhatIf -ErrorAction Stop
        Clear-BpfCounter -Node node-a -WhatIf -ErrorAction Stop
        Clear-BpfArp -Node node-a -WhatIf -ErrorAction Stop
        Remove-BpfConnectTimeProgram -Node node-a -WhatIf -ErrorAction Stop
        Get-PinHash $pins | Should -Be $before
    }

    It 'Remove-BpfConntrack -Node -WhatIf changes nothing; without it, exactly the matching entries go' {
        $udp = @(Get-BpfConntrack -PinPath (Pins node-b) -Protocol Udp)
        $udp.Count | Should -BeGreaterThan 0
        $all = @(Get-BpfConntrack -PinPath (Pins node-b)).Count
        Remove-BpfConntrack -Node node-b -Protocol Udp -WhatIf
        @(Get-BpfConntrack -PinPath (Pins node-b)).Count | Should -Be $all
        $result = Remove-BpfConntrack -Node node-b -Protocol Udp -Confirm:$false
        $result.Node | Should -Be 'node-b'
        $result.Removed | Should -Be $udp.Count
        @(Get-BpfConntrack -PinPath (Pins node-b) -Protocol Udp).Count | Should -Be 0
        @(Get-BpfConntrack -PinPath (Pins node-b)).Count | Should -Be ($all - $udp.Count)
    }

    It 'entries piped from another node are removed there, with their NAT partners' {
        $victims = @(Get-BpfConntrack -Node node-a -Type NatReverse | Select-Object -First 2)
        $before = @(Get-BpfConntrack -PinPath (Pins node-a)).Count
        $result = $victims | Remove-BpfConntrack -Confirm:$false
        $result.Removed | Should -Be 4
        @(Get-BpfConntrack -PinPath (Pins node-a)).Count | Should -Be ($before - 4)
    }

    It 'Remove-BpfConnectTimeProgram -Node -WhatIf changes nothing; without it, the node''s arrays and links go' {
        $cgroupRoot = Get-TestCgroupRoot
        if (-not $cgroupRoot) { if ($env:CI -eq 'true') { throw 'no cgroup v2 mount' }; Set-ItResult -Skipped -Because 'no cgroup v2 hierarchy is mounted'; return }
        $cgroup = Join-Path $cgroupRoot "calicobpf-remove-$PID"
        $links = "/tmp/cbk-$($cluster.RunId)-node-b/bpffs/ctlb"
        $array = Join-Path (Pins node-b) 'cali_ctlb_conn'
        $null = New-Item -ItemType Directory $cgroup, $links -Force
        try {
            [CalicoBpf.Interop.BpfPrograms]::AttachAllowAllToCgroup($cgroup, [uint][CalicoBpf.CgroupAttachType]::Connect4, 'calico_connect_', (Join-Path $links 'calico_connect_v4'))
            $map = [CalicoBpf.Interop.BpfMap]::Create('ProgramArray', 4, 4, 1, 'cali_ctlb_conn', 0)
            try { $map.Pin($array) } finally { $map.Dispose() }

            Remove-BpfConnectTimeProgram -Node node-b -WhatIf
            Test-Path $array | Should -BeTrue
            @([CalicoBpf.Interop.BpfPrograms]::QueryCgroup($cgroup, [uint][CalicoBpf.CgroupAttachType]::Connect4)).Count | Should -Be 1

            $said = Remove-BpfConnectTimeProgram -Node node-b -Confirm:$false -Verbose 4>&1 | ForEach-Object Message
            $said | Should -Contain 'Performing the operation "Empty and unpin the connect-time program array" on target "/sys/fs/bpf/tc/globals/cali_ctlb_conn on node-b".'
            @($said -like '*target "/sys/fs/bpf/ctlb/calico_connect_v4 on node-b"*').Count | Should -Be 1
            Test-Path $array | Should -BeFalse
            Get-ChildItem $links | Should -BeNullOrEmpty
            @([CalicoBpf.Interop.BpfPrograms]::QueryCgroup($cgroup, [uint][CalicoBpf.CgroupAttachType]::Connect4)).Count | Should -Be 0
        } finally {
            Remove-Item $array -Force -ErrorAction SilentlyContinue
            Remove-TestCgroup $cgroup $links
        }
    }

    It 'Clear-BpfCounter -Node resets one node''s counters; -WhatIf does not' {
        Clear-BpfCounter -Node node-a -Interface eth0 -WhatIf
        (Get-BpfCounter -Node node-a eth0 | Where-Object Id -eq 'DroppedByPolicy').Ingress | Should -Be 412
        Clear-BpfCounter -Node node-a -Interface eth0 -Confirm:$false
        (Get-BpfCounter -Node node-a eth0 | Where-Object Id -eq 'DroppedByPolicy').Ingress | Should -Be 0
        (Get-BpfCounter -Node node-a vxlan.calico | Where-Object Id -eq 'DroppedFailedDecap').Ingress | Should -Be 54
    }
}

Describe 'What travels in exec URLs' -Skip:(-not $kernel) {
    It 'no command the suite sent made an exec URL longer than 4 KB (front-ends cap request lines at 8 KB)' {
        # Runs last: every read and change of this file went through exec by now, all maps of a node included.
        $longest = Get-ClusterLongestExecTarget $cluster
        $longest | Should -BeGreaterThan 0
        $longest | Should -BeLessThan 4096
        Write-Host "longest exec URL of the suite: $longest characters"
    }
}
