using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace CalicoBpf.TestCluster.Tests;

/// <summary>
/// The test cluster's API server against the real kubectl: Kubernetes resources, Calico custom
/// resources validated with the real CRD schemas, patches, conflicts, RBAC, dry runs, watch, logs,
/// exec with stdin, and request lines refused as a front-end proxy refuses them. What the module's
/// cluster features are tested against must behave as the real one.
/// </summary>
[Collection(ResourcesCluster.Name)]
public sealed class KubernetesResourcesTests(ResourcesCluster cluster)
{
    private const string Felixes = "felixconfigurations.crd.projectcalico.org";

    private Kubectl Kubectl => cluster.Kubectl;

    private int Writes => cluster.Host.Server.Store.Writes;

    private JsonNode Felix(string name = "default", string group = "crd.projectcalico.org") =>
        JsonNode.Parse(Kubectl.Run("get", "felixconfigurations." + group, name, "-o", "json").Stdout)!;

    private static bool HasSpecField(JsonNode felix, string field) => ((JsonObject)felix["spec"]!).ContainsKey(field);

    private void Patched(params string[] args) => Assert.Matches("patched", Kubectl.Run(args).Stdout);

    [SkippableFact]
    public void Kubectl_get_prints_the_servers_tables_for_pods_felixconfigurations_ippools_daemonsets()
    {
        string[] pods = Kubectl.Run("get", "pods", "-A").Lines;
        Assert.Matches(@"^NAMESPACE\s+NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$", pods[0]);
        Assert.Equal(new[] { "web-1", "web-2" }, pods.Skip(1).Select(l => Lines.Column(l, 1)).Where(n => n.StartsWith("web-", StringComparison.Ordinal)));
        string[] felix = Kubectl.Run("get", "felixconfigurations").Lines;
        Assert.Matches(@"^NAME\s+AGE$", felix[0]);
        Assert.Equal(new[] { "default", "node.api-a" }, felix.Skip(1).Select(l => Lines.Column(l, 0)));
        Assert.Matches(@"^NAME\s+AGE$", Kubectl.Run("get", "ippools.crd.projectcalico.org").Lines[0]);
        // The v3 CRD has printer columns of its own.
        Assert.Matches(@"^default-ipv4-ippool\s+192\.168\.0\.0/16\s+CrossSubnet\s+true", Kubectl.Run("get", "ippools.projectcalico.org").Lines[1]);
        Assert.Equal("1", Kubectl.Run("get", "ds", "-n", "kube-system", "kube-proxy", "-o", "jsonpath={.status.desiredNumberScheduled}").Text);
        Assert.Equal("BPF", Kubectl.Run("get", "installation", "default", "-o", "jsonpath={.spec.calicoNetwork.linuxDataplane}").Text);
    }

    [SkippableFact]
    public void Services_have_EndpointSlices_made_from_the_pods_their_selector_matches()
    {
        JsonArray slices = JsonNode.Parse(Kubectl.Run("get", "endpointslices", "-n", "shop", "-l", "kubernetes.io/service-name=web", "-o", "json").Stdout)!["items"]!.AsArray();
        JsonNode[] endpoints = slices.SelectMany(s => s!["endpoints"]!.AsArray()).Select(e => e!).ToArray();
        Assert.Equal(new[] { "192.168.1.5", "192.168.1.6" }, endpoints.SelectMany(e => e["addresses"]!.AsArray()).Select(a => a!.GetValue<string>()));
        Assert.Equal(new[] { "web-1", "web-2" }, endpoints.Select(e => e["targetRef"]!["name"]!.GetValue<string>()));
        Assert.Equal("10.96.0.20", Kubectl.Run("get", "svc", "-n", "shop", "web", "-o", "jsonpath={.spec.clusterIP}").Text);
        Assert.Equal("172.18.2.10", Kubectl.Run("get", "cm", "-n", "tigera-operator", "kubernetes-services-endpoint", "-o", "jsonpath={.data.KUBERNETES_SERVICE_HOST}").Text);
        JsonNode pod = JsonNode.Parse(Kubectl.Run("get", "pods", "-n", "calico-system", "-o", "json").Stdout)!["items"]![0]!;
        Assert.Equal(new[] { "DaemonSet" }, pod["metadata"]!["ownerReferences"]!.AsArray().Select(o => o!["kind"]!.GetValue<string>()));
    }

    [SkippableFact]
    public void One_FelixConfiguration_is_seen_through_both_groups_and_a_merge_patch_in_one_shows_in_the_other()
    {
        Patched("patch", "felixconfigurations.projectcalico.org", "default", "--type", "merge", "-p", """{"spec":{"bpfLogLevel":"Debug"}}""");
        Assert.Equal("Debug", Felix("default", "crd.projectcalico.org")["spec"]!["bpfLogLevel"]!.GetValue<string>());
        Assert.Equal("projectcalico.org/v3", Felix("default", "projectcalico.org")["apiVersion"]!.GetValue<string>());
        Patched("patch", Felixes, "default", "--type", "json", "-p", """[{"op":"replace","path":"/spec/bpfLogLevel","value":"Info"},{"op":"add","path":"/spec/bpfKubeProxyMinSyncPeriod","value":"5s"}]""");
        JsonNode f = Felix();
        Assert.Equal(("Info", "5s"), (f["spec"]!["bpfLogLevel"]!.GetValue<string>(), f["spec"]!["bpfKubeProxyMinSyncPeriod"]!.GetValue<string>()));
        Patched("patch", Felixes, "default", "--type", "json", "-p", """[{"op":"remove","path":"/spec/bpfKubeProxyMinSyncPeriod"}]""");
        Assert.False(HasSpecField(Felix(), "bpfKubeProxyMinSyncPeriod"));
    }

    [SkippableFact]
    public void A_write_the_CRD_schema_refuses_is_a_422_naming_the_field_and_nothing_is_stored()
    {
        JsonNode before = Felix();
        int writes = Writes;
        KubectlResult r = Kubectl.Run("patch", Felixes, "default", "--type", "merge", "-p", """{"spec":{"bpfLogLevel":"Verbose","bpfAttachType":"XDP"}}""");
        Assert.NotEqual(0, r.ExitCode);
        // kubectl lists the Status's causes one per line.
        Assert.Contains("The FelixConfiguration \"default\" is invalid:", r.Joined);
        Assert.Contains("""spec.bpfLogLevel: Invalid value: "Verbose": spec.bpfLogLevel in body should match '^(?i)(Off|Info|Debug)?$'""", r.Joined);
        Assert.Contains("spec.bpfAttachType: Unsupported value: \"XDP\": supported values: \"TC\", \"TCX\", \"Netkit\"", r.Joined);
        Assert.Equal(before["metadata"]!["resourceVersion"]!.GetValue<string>(), Felix()["metadata"]!["resourceVersion"]!.GetValue<string>());
        Assert.Equal(writes, Writes);
    }

    [SkippableFact]
    public void A_stale_resourceVersion_is_a_409_Conflict_for_patch_and_for_replace()
    {
        JsonNode f = Felix();
        Patched("patch", Felixes, "default", "--type", "merge", "-p", """{"spec":{"bpfLogLevel":"Debug"}}""");
        string stale = new JsonObject { ["metadata"] = new JsonObject { ["resourceVersion"] = f["metadata"]!["resourceVersion"]!.DeepClone() }, ["spec"] = new JsonObject { ["bpfLogLevel"] = "Info" } }.ToJsonString();
        Assert.Matches("Conflict.*the object has been modified; please apply your changes to the latest version", Kubectl.Run("patch", Felixes, "default", "--type", "merge", "-p", stale).Joined);
        Assert.Matches("Conflict", Kubectl.RunWithStdin(f.ToJsonString(), "replace", "-f", "-").Joined);
        Assert.Equal("Debug", Felix()["spec"]!["bpfLogLevel"]!.GetValue<string>());
        // The current version replaces.
        f = Felix();
        f["spec"]!["bpfLogLevel"] = "Info";
        Assert.Matches("replaced", Kubectl.RunWithStdin(f.ToJsonString(), "replace", "-f", "-").Stdout);
    }

    [SkippableFact]
    public void Create_AlreadyExists_delete_and_strategic_merge_is_refused_for_custom_resources()
    {
        const string NodeX = "apiVersion: crd.projectcalico.org/v1\nkind: FelixConfiguration\nmetadata:\n  name: node.x\nspec:\n  bpfLogLevel: Debug\n";
        Assert.Matches("created", Kubectl.RunWithStdin(NodeX, "create", "-f", "-").Stdout);
        Assert.Matches("AlreadyExists|already exists", Kubectl.RunWithStdin(NodeX, "create", "-f", "-").Joined);
        Assert.Matches(@"strategic-merge-patch\+json is not supported", Kubectl.Run("patch", Felixes, "node.x", "-p", """{"spec":{"bpfLogLevel":"Info"}}""").Joined);
        Assert.Matches("deleted", Kubectl.Run("delete", Felixes, "node.x").Stdout);
        Assert.Matches("NotFound.*\"node.x\" not found", Kubectl.Run("get", Felixes, "node.x").Joined);
    }

    [SkippableFact]
    public void Fields_the_CRD_does_not_know_are_pruned_with_a_warning_as_fieldValidation_Warn_does()
    {
        KubectlResult r = Kubectl.Run("patch", Felixes, "default", "--type", "merge", "-p", """{"spec":{"bpfKubeProxyEndpointSlicesEnabled":true}}""");
        Assert.Contains("unknown field \"spec.bpfKubeProxyEndpointSlicesEnabled\"", r.Joined);
        Assert.False(HasSpecField(Felix(), "bpfKubeProxyEndpointSlicesEnabled"));
    }

    [SkippableFact]
    public void A_server_side_dry_run_validates_but_writes_nothing()
    {
        int writes = Writes;
        Patched("patch", Felixes, "default", "--type", "merge", "--dry-run=server", "-p", """{"spec":{"bpfLogLevel":"Off"}}""");
        Assert.NotEqual("Off", Felix()["spec"]!["bpfLogLevel"]?.GetValue<string>());
        Assert.Matches("is invalid", Kubectl.Run("patch", Felixes, "default", "--type", "merge", "--dry-run=server", "-p", """{"spec":{"bpfLogLevel":"Loud"}}""").Joined);
        Assert.Equal(writes, Writes);
    }

    [SkippableFact]
    public void The_read_only_identity_may_read_but_not_write_with_RBACs_wording()
    {
        Kubectl readOnly = cluster.As("readonly-token");
        Assert.Contains("felixconfiguration.crd.projectcalico.org/default", readOnly.Run("get", "felixconfigurations", "-o", "name").Lines);
        KubectlResult r = readOnly.Run("patch", Felixes, "default", "--type", "merge", "-p", """{"spec":{"bpfLogLevel":"Debug"}}""");
        Assert.Contains("felixconfigurations.crd.projectcalico.org \"default\" is forbidden: User \"system:serviceaccount:default:readonly\" cannot patch resource \"felixconfigurations\" in API group \"crd.projectcalico.org\" at the cluster scope", r.Joined);
    }

    [SkippableFact]
    public async Task Watch_streams_changes_as_they_happen()
    {
        var seen = new List<string>();
        using Process watcher = Kubectl.Start("get", Felixes, "--watch-only", "--output-watch-events");
        watcher.StandardInput.Close();
        Task reading = Task.Run(() =>
        {
            while (watcher.StandardOutput.ReadLine() is string line)
            {
                lock (seen)
                {
                    seen.Add(line);
                }
            }
        });
        try
        {
            await Task.Delay(1500);
            Patched("patch", Felixes, "node.api-a", "--type", "merge", "-p", """{"spec":{"bpfLogLevel":"Debug"}}""");
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (DateTime.UtcNow < deadline && Snapshot().All(l => !Regex.IsMatch(l, @"MODIFIED\s+node")))
            {
                await Task.Delay(200);
            }
        }
        finally
        {
            watcher.Kill(entireProcessTree: true);
            await reading;
        }

        Assert.Equal(1, Lines.Matching(Snapshot(), @"^MODIFIED\s+node\.api-a\s"));

        string[] Snapshot()
        {
            lock (seen)
            {
                return seen.ToArray();
            }
        }
    }

    [SkippableFact]
    public void Logs_with_tail_since_time_and_c_and_exec_i_passes_stdin_and_ends_on_v5s_close_signal()
    {
        string pod = Kubectl.Run("get", "pods", "-n", "calico-system", "-o", "name").Text;
        Assert.Matches("later line$", Kubectl.Run("logs", "-n", "calico-system", pod, "--tail", "1").Text);
        Assert.Single(Kubectl.Run("logs", "-n", "calico-system", pod, "--since-time", "2026-11-26T05:30:00Z").Lines);
        Assert.Contains("container nope is not valid for pod", Kubectl.Run("logs", "-n", "calico-system", pod, "-c", "nope").Joined);
        Assert.Equal(new[] { "hello from stdin" }, Kubectl.RunWithStdin("hello from stdin\n", "exec", "-i", "-n", "calico-system", pod, "--", "cat").Lines);
    }

    [SkippableFact]
    public async Task An_execs_output_and_its_status_reach_a_client_that_reads_slowly_whole()
    {
        // kubectl stops reading while its stdout pipe is full, so 27 MB wait in the sockets behind it for 8 s:
        // the rest of the output, the Status and the close frame wait with them (a kubelet's stream has no
        // deadline of its own), and nothing is lost to a reset when the session ends.
        string pod = Kubectl.Run("get", "pods", "-n", "calico-system", "-o", "name").Text;
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[]
        {
            "-c", "\"$0\" --kubeconfig \"$1\" exec -n calico-system \"$2\" -- sh -c 'yes abcdefghijklmnopqrstuvwxyz | sed 1000000q' | { sleep 8; wc -c; }; echo \"exit ${PIPESTATUS[0]}\"",
            Kubectl.Program!, Kubectl.Kubeconfig, pod,
        })
        {
            start.ArgumentList.Add(a);
        }

        using Process bash = Process.Start(start)!;
        Task<string> stderr = bash.StandardError.ReadToEndAsync();
        string[] lines = (await bash.StandardOutput.ReadToEndAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        await bash.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(new[] { "27000000", "exit 0" }.SequenceEqual(lines), $"got [{string.Join(", ", lines)}], stderr: {await stderr}");
    }

    [SkippableFact]
    public async Task A_request_line_over_8_KB_is_answered_414_URI_Too_Long_and_one_of_8_KB_is_served()
    {
        Assert.Equal(HttpStatusCode.OK, await Request(8192));
        Assert.Equal(HttpStatusCode.RequestUriTooLong, await Request(8193));
    }

    /// <summary>The status of a GET whose request line ("GET PATH HTTP/1.1" and its CRLF, as Kestrel and nginx count it) is that long.</summary>
    private async Task<HttpStatusCode> Request(int length)
    {
        TestClusterHost host = cluster.Host;
        const string Path = "/api/v1/namespaces/calico-system/pods?labelSelector=k8s-app%3Dcalico-node&pad=";
        string pad = new('x', length - $"GET {Path} HTTP/1.1\r\n".Length);
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator };
        using var client = new HttpClient(handler);
        using var request = new HttpRequestMessage(HttpMethod.Get, host.Url + Path + pad);
        request.Headers.Authorization = new("Bearer", "admin-token");
        using HttpResponseMessage response = await client.SendAsync(request);
        return response.StatusCode;
    }
}
