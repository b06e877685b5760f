using CalicoBpf.Cluster;
using CalicoBpf.Interop;
using CalicoBpf.Maps;
using CalicoBpf.Trace;
using CalicoBpf.Transport;

namespace CalicoBpf.Sampling;

/// <summary>What Get-BpfDrop reads on each node.</summary>
/// <param name="InterfaceFilter">Which interfaces (by name); null: all.</param>
/// <param name="PolicyDebugDirectory">Felix's policy debug files, for the deny rules; null: rules are not read.</param>
/// <param name="TracingDirectory">Where tracefs is (-TracingPath); null: found from the mounts.</param>
/// <param name="Workloads">With -Resolve: the cluster's pods and services.</param>
public sealed record DropQuery(Func<string, bool>? InterfaceFilter, string? PolicyDebugDirectory, string? TracingDirectory, WorkloadIndex? Workloads);

/// <summary>
/// One node's drops window after window (Get-BpfDrop): the Dropped counters of cali_counters that rose
/// (<see cref="CounterSampler"/>), each with the deny rules of the same interface hook whose hit counters
/// rose in the same window (<see cref="PolicyRuleSampler"/>: "which rule dropped my packet" from the
/// counters alone), and, where the trace buffer holds Calico's debug lines, the lines of the dropped
/// packets. The window's edges are the node's own monotonic clock at each read, so trace lines are
/// chosen by the node's time, not the client's.
/// </summary>
public sealed class DropSampler
{
    /// <summary>How many dropped packets' trace lines one drop keeps (the newest).</summary>
    public const int MaxTracedPackets = 3;

    private readonly CounterSampler _counters;
    private readonly PolicyRuleSampler _rules;
    private ulong? _lastMonotonic;
    private DateTime _lastTime;
    private bool _noRules;
    private bool _noTrace;

    /// <param name="time">The clock the counters' readings are timed by (a bundle's window offline); null: the system's.</param>
    public DropSampler(TimeProvider? time = null)
    {
        _counters = new CounterSampler(time);
        _rules = new PolicyRuleSampler(time);
    }

    public IReadOnlyList<PacketDrop> Sample(INodeDataplane node, SampleTick tick, DropQuery query, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        IReadOnlyList<CounterSample> counters = _counters.Sample(CounterReader.Read(node, query.InterfaceFilter, reporter, cancellationToken), tick);
        // After the counters: remotely this is the clock the probe sampled in the exec of the dump.
        ClockSample clock = node.SampleClock();
        IReadOnlyList<PolicyRuleSample> rules = ReadRules(node, tick, query, reporter, cancellationToken);
        (ulong? from, DateTime start) = (_lastMonotonic, _lastTime);
        (_lastMonotonic, _lastTime) = (clock.MonotonicNanoseconds, tick.Timestamp);
        List<CounterSample> dropped = counters.Where(c => c.Category == CounterCategory.Dropped && c.Delta > 0).ToList();
        if (from is null || dropped.Count == 0)
        {
            return Array.Empty<PacketDrop>();
        }

        CalicoRelease release = ReleaseInference.Of(node, reporter).Release;
        Dictionary<(string, PolicyHook), List<List<TraceLogEntry>>> traced =
            ReadTrace(node, query, clock, release, from.Value, dropped.Select(d => (d.Interface, d.Hook)).ToHashSet(), reporter, cancellationToken);
        Dictionary<int, string> workloads = query.Workloads is { } index ? WorkloadsByIfIndex(node, index, reporter, cancellationToken) : new();

        var drops = new List<PacketDrop>();
        foreach (CounterSample c in dropped.OrderBy(c => c.Interface, StringComparer.Ordinal).ThenBy(c => c.Hook).ThenBy(c => c.Id, StringComparer.Ordinal))
        {
            List<PolicyRuleSample> denies = c.Id == "DroppedByPolicy"
                ? rules.Where(r => r.Interface == c.Interface && r.Hook == c.Hook && r.Action == "deny" && r.Delta > 0)
                    .OrderByDescending(r => r.Delta).ThenBy(r => r.Tier, StringComparer.Ordinal).ThenBy(r => r.Policy, StringComparer.Ordinal).ThenBy(r => r.Index).ToList()
                : new List<PolicyRuleSample>();
            PolicyRuleSample? rule = denies.FirstOrDefault();
            List<List<TraceLogEntry>> packets = traced.TryGetValue((c.Interface, c.Hook), out var p) ? p : new();
            drops.Add(new PacketDrop
            {
                Node = c.Node,
                Start = start,
                End = tick.Timestamp,
                Interface = c.Interface,
                IfIndex = c.IfIndex,
                Hook = c.Hook,
                Reason = CounterLayout.Reason(c.Id, release) ?? c.Name,
                Id = c.Id,
                Count = c.Delta,
                Rate = c.Rate,
                Reset = c.Reset,
                Tier = rule?.Tier ?? string.Empty,
                Policy = rule?.Policy ?? string.Empty,
                PolicyKind = rule?.PolicyKind ?? string.Empty,
                RuleIndex = rule?.Index,
                Rule = rule?.Rule ?? string.Empty,
                RuleHits = rule?.Delta,
                Rules = denies.Select(r => $"{r.Tier}/{(r.Policy.Length > 0 ? r.Policy : "(end of tier)")}[{r.Index}] +{r.Delta.ToString(CultureInfo.InvariantCulture)}").ToList(),
                TraceLines = packets.SelectMany(pk => pk.Select(e => e.RawLine.Trim())).ToList(),
                Workload = workloads.TryGetValue(c.IfIndex, out string? pod) ? pod : string.Empty,
                Peers = query.Workloads is { } names ? Peers(packets, names) : ValueList<string>.Empty,
            });
        }

        return drops;
    }

    /// <summary>The rules of every interface Felix wrote policy debug files for, sampled; none when the directory is not there.</summary>
    private IReadOnlyList<PolicyRuleSample> ReadRules(INodeDataplane node, SampleTick tick, DropQuery query, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        if (query.PolicyDebugDirectory is not { } dir || _noRules)
        {
            return Array.Empty<PolicyRuleSample>();
        }

        // One listing and one read of the rule counters for every interface (a file gone since the listing gives no rules).
        if (PolicyDebug.ReadAll(node, dir, query.InterfaceFilter, false, reporter, cancellationToken) is not { } rules)
        {
            _noRules = true;
            reporter.Verbose($"No policy debug files in {dir} (BPFPolicyDebugEnabled is off?): drops by policy are not matched to rules.");
            return Array.Empty<PolicyRuleSample>();
        }
        return _rules.Sample(rules, tick);
    }

    /// <summary>
    /// Dropped packets in the trace buffer, by interface and hook: each packet's lines from "New packet"
    /// to a final DENY on one CPU, stamped after <paramref name="from"/> by the node's clock. Empty when
    /// the buffer cannot be read without consuming it (a calico-node with no tracefs), said once.
    /// A line's I/E tag is the policy direction, not the hook: the interface's kind in cali_iface decides
    /// (<see cref="HookOf"/>); for an interface the map does not hold, the one TC hook that dropped in the
    /// window, or else a cali* name is a workload. Lines are chosen by their trace timestamp between the
    /// window's two reads of the node's monotonic clock, moved onto the trace buffer's clock by the lead
    /// the node reports (<see cref="INodeTrace.TraceClockOffset"/>): its default clock, "local"
    /// (sched_clock), may be seconds from the monotonic one on a virtual machine.
    /// </summary>
    private Dictionary<(string, PolicyHook), List<List<TraceLogEntry>>> ReadTrace(INodeDataplane node, DropQuery query, ClockSample clock, CalicoRelease release,
        ulong from, HashSet<(string Interface, PolicyHook Hook)> dropped, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        var interfaces = dropped.Select(d => d.Interface).ToHashSet(StringComparer.Ordinal);
        var found = new Dictionary<(string, PolicyHook), List<List<TraceLogEntry>>>();
        if (_noTrace)
        {
            return found;
        }

        List<TraceLogEntry> entries;
        long offset;
        try
        {
            offset = node.TraceClockOffset(query.TracingDirectory, cancellationToken) ?? 0;
            long lead = offset;
            entries = node.ReadTraceLines(false, query.TracingDirectory, cancellationToken)
                .Select(line => TraceLogParser.Parse(line, node.Node, clock, release, lead))
                .Where(e => e.Interface is { } i && interfaces.Contains(i) && e.TimestampValue is not null)
                .ToList();
        }
        catch (Exception ex) when (ex is BpfException or NodeCommandException or IOException or UnauthorizedAccessException)
        {
            _noTrace = true;
            reporter.Verbose($"No trace lines for the drops: {ex.Message}");
            return found;
        }

        // The window's edges on the trace buffer's clock.
        (ulong after, ulong upTo) = (TraceLogParser.ToTraceClock(from, offset), TraceLogParser.ToTraceClock(clock.MonotonicNanoseconds, offset));
        entries = entries.Where(e => (ulong)(e.TimestampValue!.Value.Ticks * 100) is var ns && ns > after && ns <= upTo).ToList();

        List<List<TraceLogEntry>> packets = DroppedPackets(entries);
        if (packets.Count == 0)
        {
            return found;
        }

        Dictionary<string, bool>? workload = null;
        foreach (List<TraceLogEntry> lines in packets)
        {
            string iface = lines[0].Interface!;
            workload ??= WorkloadInterfaces(node, reporter, cancellationToken);
            bool ingressDropped = dropped.Contains((iface, PolicyHook.Ingress)), egressDropped = dropped.Contains((iface, PolicyHook.Egress));
            PolicyHook? hook = workload.TryGetValue(iface, out bool w) ? HookOf(lines[0].Direction, w)
                // Not in cali_iface: when only one TC hook dropped, its packets are that hook's; else a cali* name is a workload.
                : lines[0].Direction is TraceDirection.Ingress or TraceDirection.Egress && ingressDropped != egressDropped ? (ingressDropped ? PolicyHook.Ingress : PolicyHook.Egress)
                : HookOf(lines[0].Direction, iface.StartsWith("cali", StringComparison.Ordinal));

            if (hook is not { } h)
            {
                continue;
            }

            PolicyHook key = h;

            if (!found.TryGetValue((iface, key), out List<List<TraceLogEntry>>? list))
            {
                found[(iface, key)] = list = new List<List<TraceLogEntry>>();
            }

            list.Add(lines);
            if (list.Count > MaxTracedPackets)
            {
                list.RemoveAt(0);
            }
        }

        return found;
    }

    /// <summary>
    /// The packets a program dropped, from its debug lines: a packet's lines run from "New packet" to the next
    /// one (or a "Final result") on the same interface, direction and CPU, and it was dropped when one of them
    /// is a DENY: "Final result=DENY (n)", or "DENY due to policy", which the drop program prints as the
    /// packet's last line with no final result (bpf-gpl/tc.c, as Calico's programs wrote it in the realcalico
    /// captures of both releases).
    /// </summary>
    public static List<List<TraceLogEntry>> DroppedPackets(IEnumerable<TraceLogEntry> entries)
    {
        var open = new Dictionary<(string?, TraceDirection, int?), List<TraceLogEntry>>();
        var dropped = new List<List<TraceLogEntry>>();
        void Close((string?, TraceDirection, int?) key)
        {
            if (open.Remove(key, out List<TraceLogEntry>? lines) && lines.Any(e => e.Result == "DENY" || e.Message.StartsWith("DENY", StringComparison.Ordinal)))
            {
                dropped.Add(lines);
            }
        }

        foreach (TraceLogEntry e in entries)
        {
            var key = (e.Interface, e.Direction, e.Cpu);
            if (e.Message.StartsWith("New packet", StringComparison.Ordinal))
            {
                Close(key);
                open[key] = new List<TraceLogEntry>();
            }
            else if (!open.ContainsKey(key))
            {
                continue;   // the rest of a packet whose first line the buffer no longer holds
            }

            open[key].Add(e);
            if (e.Result is not null)
            {
                Close(key);
            }
        }

        foreach (var key in open.Keys.ToList())
        {
            Close(key);
        }

        return dropped.OrderBy(p => p[0].TimestampValue).ToList();
    }

    /// <summary>
    /// The TC hook of a trace line's direction: the tag's I/E is the policy direction (bpf.h CALI_F_INGRESS),
    /// which on a workload's veth is the opposite of the hook (from the pod is the veth's TC ingress, tagged E).
    /// </summary>
    public static PolicyHook? HookOf(TraceDirection direction, bool workload) => direction switch
    {
        TraceDirection.Xdp => PolicyHook.Xdp,
        TraceDirection.Ingress => workload ? PolicyHook.Egress : PolicyHook.Ingress,
        TraceDirection.Egress => workload ? PolicyHook.Ingress : PolicyHook.Egress,
        _ => null,
    };

    /// <summary>Whether Felix marked each interface of cali_iface as a workload; empty when the map cannot be read (then cali* names are workloads).</summary>
    private static Dictionary<string, bool> WorkloadInterfaces(INodeDataplane node, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        var workload = new Dictionary<string, bool>(StringComparer.Ordinal);
        try
        {
            foreach (InterfaceState s in InterfaceStateMap.Read(node, reporter, cancellationToken))
            {
                workload[s.Name] = s.Flags.HasFlag(InterfaceStateFlags.Workload);
            }
        }
        catch (BpfException ex)
        {
            reporter.Verbose($"No interface state map ({ex.Message}): interfaces named cali* are taken as workloads.");
        }

        return workload;
    }

    /// <summary>The pod behind each workload interface: the node's workload routes (flag Workload) by ifindex, named by the cluster's pods.</summary>
    private static Dictionary<int, string> WorkloadsByIfIndex(INodeDataplane node, WorkloadIndex names, IEngineReporter reporter, CancellationToken cancellationToken)
    {
        var pods = new Dictionary<int, string>();
        foreach (Route r in RouteMap.Read(node, false, null, reporter, cancellationToken))
        {
            if (r.Flags.HasFlag(RouteFlags.Workload) && r.IfIndex is { } ifIndex && names.PodAt(r.AddressValue) is { Length: > 0 } pod)
            {
                pods.TryAdd(ifIndex, pod);
            }
        }

        return pods;
    }

    /// <summary>The pods and services the traced packets were between: the drop program's src/dst, and the service the NAT stage looked up.</summary>
    private static ValueList<string> Peers(List<List<TraceLogEntry>> packets, WorkloadIndex names)
    {
        var peers = new List<string>();
        foreach (TraceLogEntry e in packets.SelectMany(p => p))
        {
            if (PacketAddresses().Match(e.Message) is { Success: true } m)
            {
                foreach (string a in new[] { m.Groups["src"].Value, m.Groups["dst"].Value })
                {
                    if (IPAddress.TryParse(a, out IPAddress? address))
                    {
                        peers.Add(names.PodAt(address) is { Length: > 0 } pod ? pod : a);
                    }
                }
            }
            else if (NatLookup().Match(e.Message) is { Success: true } n && IPAddress.TryParse(n.Groups["addr"].Value, out IPAddress? service)
                && int.TryParse(n.Groups["port"].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int port)
                && names.ServiceAt(service, port, n.Groups["proto"].Value == "udp" ? IpProtocol.Udp : IpProtocol.Tcp) is { Length: > 0 } svc)
            {
                peers.Add("svc/" + svc);
            }
        }

        return peers.Distinct(StringComparer.Ordinal).ToList();
    }

    private static Regex PacketAddresses() => PacketAddressesRegex;

    private static Regex NatLookup() => NatLookupRegex;

    /// <summary>tc.c's drop program: "src=10.78.1.2 dst=10.78.1.1"; the IP header line: "IP s=... d=...".</summary>
    private static readonly Regex PacketAddressesRegex = new(@"^(?:src=(?<src>\S+) dst=(?<dst>\S+)|IP s=(?<src>\S+) d=(?<dst>\S+))$", RegexOptions.CultureInvariant);

    /// <summary>nat.h: "NAT: 1st level lookup addr=10.96.0.10 port=53 udp".</summary>
    private static readonly Regex NatLookupRegex = new(@"^NAT: 1st level lookup addr=(?<addr>\S+) port=(?<port>\d+) (?<proto>tcp|udp|sctp|icmp)", RegexOptions.CultureInvariant);
}
