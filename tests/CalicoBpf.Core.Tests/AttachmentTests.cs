using CalicoBpf.Diagnostics;
using static CalicoBpf.Tests.CommandTransportTests;

namespace CalicoBpf.Tests;

/// <summary>
/// Programs attached the three ways Felix attaches them (bpfAttachType TC, TCX, Netkit), on real
/// devices of a test-owned network namespace: the kernel's own answers (the ids the attach calls
/// returned) against the local listing, and the local listing against bpftool's (the remote transport).
/// </summary>
public sealed class AttachmentTests
{
    /// <summary>A namespace with the veth pair cbt0/cbt1 up, and a private bpffs for the program and link pins.</summary>
    private sealed class Devices : IDisposable
    {
        public Devices()
        {
            Ns.Ip("link", "add", "cbt0", "type", "veth", "peer", "name", "cbt1");
            Ns.Ip("link", "set", "cbt0", "up");
            Ns.Ip("link", "set", "cbt1", "up");
        }

        public NetnsScope Ns { get; } = new();

        public BpfFsScope Fs { get; } = new();

        public int IfIndex(string name) => NetworkNamespace.Run(Ns.Name, () => NetLink.ListLinks().Values.Single(l => l.Name == name).IfIndex);

        /// <summary>Links a program to a device hook as Felix does (a pinned bpf link: felix/bpf/tc/attach.go attachLinkProgram).</summary>
        public (uint ProgramId, uint LinkId) Link(string device, DeviceAttachType type, string program, int verdict = 0) =>
            NetworkNamespace.Run(Ns.Name, () => BpfPrograms.AttachToDevice(IfIndex(device), type, program, Path.Combine(Fs.Root, $"{device}_{type}_{Guid.NewGuid():N}"), verdict));

        /// <summary>A clsact qdisc and a direct-action tc filter running a pinned program, as Felix's TC mode (and tc) attach.</summary>
        public uint TcFilter(string device, string hook, string program)
        {
            string pin = Path.Combine(Fs.Root, $"tc_{device}_{hook}");
            uint id = BpfPrograms.PinTcProgram(program, pin);
            Ns.Exec("sh", "-c", $"tc qdisc show dev {device} | grep -q clsact || tc qdisc add dev {device} clsact");
            Ns.Exec("tc", "filter", "add", "dev", device, hook, "bpf", "da", "object-pinned", pin);
            return id;
        }

        public AttachmentListing Local() => NetworkNamespace.Run(Ns.Name, () => new LocalDataplane(null, "n").ListAttachments());

        public void Dispose()
        {
            Ns.Dispose();
            Fs.Dispose();
        }
    }

    private static string Row(ProgramAttachment a) => $"{a.Interface} {a.Kind} {a.Hook} {a.AttachPoint} {a.ProgramId} {a.ProgramName} link {a.LinkId?.ToString() ?? "-"} calico {a.IsCalico}";

    [SkippableFact]
    public void Tc_and_tcx_attachments_are_listed_as_the_kernel_attached_them_and_equal_over_bpftool_7_5()
    {
        RequireTools();
        string bpftool75 = Kernel.Bpftool75Directory();
        using var d = new Devices();
        uint tc = d.TcFilter("cbt0", "ingress", "cali_tc_preamble");
        var ingress = d.Link("cbt1", DeviceAttachType.TcxIngress, "cali_tc_preamble");
        var egress = d.Link("cbt1", DeviceAttachType.TcxEgress, "cali_tc_preamble");
        var other = d.Link("cbt1", DeviceAttachType.TcxEgress, "other_egress");

        AttachmentListing local = d.Local();
        Assert.Equal(AttachKind.None, local.Unseen);
        var expected = new[]
        {
            $"cbt0 TC Ingress clsact/ingress {tc} cali_tc_preambl link - calico True",
            $"cbt1 TCX Ingress tcx/ingress {ingress.ProgramId} cali_tc_preambl link {ingress.LinkId} calico True",
            $"cbt1 TCX Egress tcx/egress {egress.ProgramId} cali_tc_preambl link {egress.LinkId} calico True",
            $"cbt1 TCX Egress tcx/egress {other.ProgramId} other_egress link {other.LinkId} calico False",
        };
        // By interface (ifindex) as bpftool lists them; within a hook in the kernel's order (a link
        // created without BPF_F_BEFORE goes last).
        Assert.Equal(d.IfIndex("cbt0") < d.IfIndex("cbt1") ? expected : expected[1..].Append(expected[0]), local.Attachments.Select(Row));

        AttachmentListing remote = new CommandDataplane(new NetnsRunner(d.Ns.Name, "n", bpftool75)).ListAttachments();
        Assert.Equal(AttachKind.None, remote.Unseen);
        Assert.Null(remote.UnseenReason);
        Assert.Equal(local.Attachments.Select(a => Fields(a)), remote.Attachments.Select(a => Fields(a)));
    }

    [SkippableFact]
    public void A_bpftool_older_than_7_3_lists_tc_only_and_says_it_cannot_see_tcx_or_netkit()
    {
        RequireTools();
        using var d = new Devices();
        d.TcFilter("cbt0", "egress", "cali_tc_preamble");
        d.Link("cbt1", DeviceAttachType.TcxIngress, "cali_tc_preamble");
        using var old = new Bpftool53();

        AttachmentListing local = d.Local();
        AttachmentListing remote = new CommandDataplane(new NetnsRunner(d.Ns.Name, "n", old.Dir)).ListAttachments();
        Assert.Equal(AttachKind.TCX | AttachKind.Netkit, remote.Unseen);
        Assert.Equal(local.Attachments.Where(a => a.Kind == AttachKind.TC).Select(a => Fields(a)), remote.Attachments.Select(a => Fields(a)));
        Assert.Contains(local.Attachments, a => a.Kind == AttachKind.TCX);
        Assert.StartsWith("The bpftool of calico-node on n is 5.3.0, older than 7.3 (the first to list TCX and netkit attachments): only TC (clsact) attachments are listed.", remote.UnseenReason);
        Assert.Contains("attach with TC only", remote.UnseenReason);
        Assert.Equal(0, remote.UnseenLinkPins);
    }

    [Fact]
    public void An_old_bpftool_points_at_felixs_link_pins_when_there_are_some()
    {
        // bpftool 5.3's net show: an xdp and a tc section, no TCX or netkit entry (none can be told).
        const string net = """[{"xdp":[],"tc":[{"devname":"eth0","ifindex":2,"kind":"clsact/ingress","name":"cali_tc_preambl","id":41}],"flow_dissector":[]}]""";
        const string progs = """[{"id":41,"type":"sched_cls","name":"cali_tc_preambl","tag":"0123456789abcdef"}]""";
        AttachmentListing l = AttachmentReader.ParseBpftool("node-a", """{"version":"5.3.0"}""", net, progs,
            new[] { "/sys/fs/bpf/tcx/eth0_ingress", "/sys/fs/bpf/tcx/eth0_egress" });
        Assert.Equal("eth0 TC Ingress clsact/ingress 41 cali_tc_preambl link - calico True", Row(Assert.Single(l.Attachments)));
        Assert.Contains("Felix has pinned 2 TCX or netkit links there (/sys/fs/bpf/tcx/eth0_ingress, /sys/fs/bpf/tcx/eth0_egress)", l.UnseenReason);
        Assert.Contains("run Get-BpfInterface on the node itself", l.UnseenReason);
        Assert.Equal(2, l.UnseenLinkPins);
        Assert.Equal(new Version(7, 5, 0), AttachmentReader.ParseVersion("""{"version":"7.5.0","libbpf_version":"1.5"}"""));
    }

    [SkippableFact]
    public void Netkit_attachments_are_listed_on_the_primary_with_felixs_hooks()
    {
        RequireTools();
        string bpftool75 = Kernel.Bpftool75Directory();
        using var ns = new NetnsScope();
        try
        {
            ns.Ip("link", "add", "nk0", "type", "netkit");
        }
        catch (InvalidOperationException ex) when (ex.Message.Contains("Unknown device type", StringComparison.Ordinal))
        {
            // Not a refusal CI could lift: the kernel itself has no netkit driver.
            Skip.If(true, "This kernel has no netkit (built without CONFIG_NETKIT: ip link add type netkit says 'Unknown device type'), so no netkit device can be made here.");
        }

        using var fs = new BpfFsScope();
        int nk0 = NetworkNamespace.Run(ns.Name, () => NetLink.ListLinks().Values.Single(l => l.Name == "nk0").IfIndex);
        var primary = NetworkNamespace.Run(ns.Name, () => BpfPrograms.AttachToDevice(nk0, DeviceAttachType.NetkitPrimary, "cali_tc_preamble", Path.Combine(fs.Root, "nk0_egress")));
        var peer = NetworkNamespace.Run(ns.Name, () => BpfPrograms.AttachToDevice(nk0, DeviceAttachType.NetkitPeer, "cali_tc_preamble", Path.Combine(fs.Root, "nk0_ingress")));
        AttachmentListing local = NetworkNamespace.Run(ns.Name, () => new LocalDataplane(null, "n").ListAttachments());
        Assert.Equal(new[]
        {
            $"nk0 Netkit Egress netkit/primary {primary.ProgramId} cali_tc_preambl link {primary.LinkId} calico True",
            $"nk0 Netkit Ingress netkit/peer {peer.ProgramId} cali_tc_preambl link {peer.LinkId} calico True",
        }, local.Attachments.Where(a => a.Interface == "nk0").Select(Row));
        AttachmentListing remote = new CommandDataplane(new NetnsRunner(ns.Name, "n", bpftool75)).ListAttachments();
        Assert.Equal(local.Attachments.Select(a => Fields(a)), remote.Attachments.Select(a => Fields(a)));
    }

    /// <summary>The drops check on a TC interface (cbt0) and a TCX one (cbt1, its program dropping), with these counters seeded.</summary>
    private static CheckResult DropsWith(ulong tcDrops, ulong tcxDrops)
    {
        using var d = new Devices();
        d.TcFilter("cbt0", "ingress", "cali_tc_preamble");
        d.Link("cbt1", DeviceAttachType.TcxIngress, "cali_tc_preamble", verdict: 2);
        var links = new Dictionary<string, int> { ["cbt0"] = d.IfIndex("cbt0"), ["cbt1"] = d.IfIndex("cbt1") };
        using (var sim = SimulatedDataplane.Claim(d.Fs.PinDirectory))
        {
            NodeScenario.Parse($$"""
                interfaces:
                  - name: cbt0
                    ingress: { TotalPackets: 10, DroppedByPolicy: {{tcDrops}} }
                  - name: cbt1
                    ingress: { TotalPackets: 50, DroppedByPolicy: {{tcxDrops}} }
                """).Seed(sim, links);
        }

        return NetworkNamespace.Run(d.Ns.Name, () =>
            new DropsCheck().Run(new CheckContext(null, null, new LocalDataplane(d.Fs.PinDirectory, "n"), CancellationToken.None)).Single());
    }

    [SkippableFact]
    public void The_drops_check_counts_tcx_interfaces_from_the_counters_map_and_says_why()
    {
        RequireTools();
        CheckResult r = DropsWith(1, 9);
        Assert.Equal(CheckStatus.Warning, r.Status);
        Assert.Equal("cbt1 by policy 9, cbt0 by policy 1; no clsact qdisc on 1 interface with Calico programs attached with TCX or netkit (bpfAttachType), where tc -s qdisc counts no drops; their drops from the counters map: cbt1 (TCX) 9",
            r.Evidence);

        // Nothing dropped: a pass that still says where the TCX interface's drops would be counted.
        CheckResult pass = DropsWith(0, 0);
        Assert.Equal(CheckStatus.Pass, pass.Status);
        Assert.Equal("No Dropped counter and no clsact qdisc drop is above zero; on interfaces attached with TCX or netkit, which have no clsact qdisc, only the counters map counts drops.", pass.Message);
        Assert.EndsWith("their drops from the counters map: cbt1 (TCX) 0", pass.Evidence);
    }
}
