using CalicoBpf.Maps;

namespace CalicoBpf.Flow;

public enum PolicyVerdict
{
    /// <summary>The program allows the packet.</summary>
    Allow,

    /// <summary>The program drops it (a deny rule, an end of tier, the end of the profiles).</summary>
    Deny,

    /// <summary>XDP only: no untracked policy decided, so the packet goes on to tc (XDP_PASS).</summary>
    NoMatch,

    /// <summary>The program could not be followed (an action Felix's builder has no label for).</summary>
    Unknown,
}

/// <summary>One rule the evaluation looked at, in program order: whether it matched, and if not the first criterion that failed.</summary>
public sealed record PolicyStep(string Stage, string Tier, string Policy, int Index, ulong? MatchId, string Action, bool Matched, string Why, string Rule);

/// <summary>The program's answer for one packet: the verdict, the rule that decided it (null when none did), and every rule looked at.</summary>
public sealed record PolicyDecision(PolicyVerdict Verdict, PolicyStep? DecidedBy, string Reason, IReadOnlyList<PolicyStep> Steps);

/// <summary>
/// Runs a policy program the way Felix's builder lays it out (felix/bpf/polprog/pol_prog_builder.go,
/// Instructions at v3.30.7): pre-DNAT host tiers on the pre-NAT destination; traffic to or from
/// the host skips apply-on-forward and goes to normal host tiers and host profiles (or, with
/// SuppressNormalHostPolicy, straight on); forwarded traffic takes apply-on-forward tiers; then a
/// host interface allows, a workload interface takes its tiers and profiles, and what is left is
/// denied. XDP takes only the normal host tiers, on the pre-NAT destination, and passes what they
/// leave. Within a rule the criteria are ANDed in the builder's order; lists are ORed, except
/// source IP sets (each must hold) and negated lists (none may match). Ports and ICMP type do not
/// check the protocol: ICMP type and code overlay the destination port. Nothing is written and
/// no counter moves.
/// </summary>
public static class PolicyEvaluator
{
    private enum Outcome
    {
        FellThrough,
        Allowed,
        Denied,
        Broken,
    }

    public static PolicyDecision Evaluate(PolicyProgram program, PolicyPacket packet, IIpSetMembership ipSets)
    {
        var run = new Run(program, packet, ipSets);
        return run.Execute();
    }

    private sealed class UnknownMembership(string set) : Exception($"IP set {set} is not known")
    {
        public string Set { get; } = set;
    }

    private sealed class Run
    {
        private readonly PolicyProgram _p;
        private readonly PolicyPacket _pkt;
        private readonly IIpSetMembership _sets;
        private readonly List<PolicyStep> _steps = new();
        private PolicyStep? _decided;
        private PolicyStep? _unknown;
        private string _reason = string.Empty;

        public Run(PolicyProgram program, PolicyPacket packet, IIpSetMembership sets)
        {
            _p = program;
            _pkt = packet;
            _sets = sets;
        }

        public PolicyDecision Execute()
        {
            bool hostEnd = _pkt.SourceIsHost || _pkt.DestinationIsHost;
            if (!_p.ForXdp)
            {
                switch (Tiers("pre-DNAT host policy", _p.HostPreDnatTiers, preNat: true))
                {
                    case Outcome.Denied: return Done(PolicyVerdict.Deny);
                    case Outcome.Broken: return Done(PolicyVerdict.Unknown);
                    case Outcome.Allowed: return AllowedByHostPolicy();
                }

                if (hostEnd && _p.SuppressNormalHostPolicy)
                {
                    return AllowedByHostPolicy();
                }

                if (!hostEnd)
                {
                    switch (Tiers("apply-on-forward host policy", _p.HostForwardTiers, preNat: false))
                    {
                        case Outcome.Denied: return Done(PolicyVerdict.Deny);
                        case Outcome.Broken: return Done(PolicyVerdict.Unknown);
                    }

                    return AllowedByHostPolicy();
                }
            }

            if (!_p.SuppressNormalHostPolicy)
            {
                if (_p.ForXdp)
                {
                    switch (Tiers("untracked (XDP) host policy", _p.HostNormalTiers, preNat: true))
                    {
                        case Outcome.Denied: return Done(PolicyVerdict.Deny);
                        case Outcome.Broken: return Done(PolicyVerdict.Unknown);
                        case Outcome.FellThrough:
                            _reason = "no untracked policy decided: XDP passes the packet on to tc";
                            return Done(PolicyVerdict.NoMatch);
                    }

                    return AllowedByHostPolicy();
                }

                switch (Tiers("normal host policy", _p.HostNormalTiers, preNat: false))
                {
                    case Outcome.Denied: return Done(PolicyVerdict.Deny);
                    case Outcome.Broken: return Done(PolicyVerdict.Unknown);
                    case Outcome.Allowed: return AllowedByHostPolicy();
                }

                switch (Profiles("host profiles", _p.HostProfiles))
                {
                    case Outcome.Allowed: return AllowedByHostPolicy();
                    case Outcome.Broken: return Done(PolicyVerdict.Unknown);
                    default: return Done(PolicyVerdict.Deny);
                }
            }

            return AllowedByHostPolicy();
        }

        private PolicyDecision AllowedByHostPolicy()
        {
            if (_p.ForHostInterface)
            {
                if (_decided is null)
                {
                    _reason = "no host policy denied it: a host interface allows";
                }

                return Done(PolicyVerdict.Allow);
            }

            _decided = null;
            switch (Tiers("workload policy", _p.Tiers, preNat: false))
            {
                case Outcome.Allowed: return Done(PolicyVerdict.Allow);
                case Outcome.Denied: return Done(PolicyVerdict.Deny);
                case Outcome.Broken: return Done(PolicyVerdict.Unknown);
            }

            return Profiles("profiles", _p.Profiles) switch
            {
                Outcome.Allowed => Done(PolicyVerdict.Allow),
                Outcome.Broken => Done(PolicyVerdict.Unknown),
                _ => Done(PolicyVerdict.Deny),
            };
        }

        private PolicyDecision Done(PolicyVerdict verdict)
        {
            if (_unknown is { } u)
            {
                _reason = $"{u.Stage}: tier {u.Tier}, policy {u.Policy}, rule {u.Index} ({u.Action}) may match: {u.Why}";
                return new PolicyDecision(PolicyVerdict.Unknown, u, _reason, _steps);
            }

            if (_reason.Length == 0 && _decided is { } d)
            {
                _reason = d.Policy.Length > 0
                    ? d.Tier.Length > 0 ? $"{d.Stage}: tier {d.Tier}, policy {d.Policy}, rule {d.Index} ({d.Action})" : $"{d.Stage}: {d.Policy}, rule {d.Index} ({d.Action})"
                    : $"{d.Stage}: {d.Why}";
            }

            return new PolicyDecision(verdict, _decided, _reason, _steps);
        }

        private Outcome Tiers(string stage, IReadOnlyList<PolicyTier> tiers, bool preNat)
        {
            foreach (PolicyTier tier in tiers)
            {
                bool passed = false;
                foreach (PolicyBlock policy in tier.Policies)
                {
                    for (int i = 0; i < policy.Rules.Count && !passed; i++)
                    {
                        PolicyProgramRule rule = policy.Rules[i];
                        string action = rule.Match.Action.ToLowerInvariant();
                        PolicyStep? step = Try(stage, tier.Name, policy.Name, i, rule, action, preNat);
                        if (step is null || !step.Matched)
                        {
                            continue;
                        }

                        switch (action)
                        {
                            case "allow": _decided = step; return Outcome.Allowed;
                            case "deny": _decided = step; return Outcome.Denied;
                            case "pass" or "next-tier": passed = true; break;
                            case "log": break;
                            default:
                                _decided = step;
                                _reason = $"{stage}: tier {tier.Name}, policy {policy.Name}, rule {i} has the action '{rule.Match.Action}', which Felix's policy program has no jump for";
                                return Outcome.Broken;
                        }
                    }

                    if (passed)
                    {
                        break;
                    }
                }

                if (passed)
                {
                    continue;   // pass jumps past the end-of-tier rule
                }

                string end = tier.EndAction is { Length: > 0 } e ? e.ToLowerInvariant() : "deny";
                if (end == PolicyTier.EndNotWritten)
                {
                    // Before v3.30 the file does not say it. Felix ends every pre-DNAT tier with pass; elsewhere it is
                    // deny unless the tier's default action is Pass or it holds only staged policies.
                    if (preNat)
                    {
                        continue;
                    }

                    _decided = new PolicyStep(stage, tier.Name, string.Empty, -1, null, "unknown", true,
                        $"end of tier {tier.Name}: the debug file (Calico before v3.30) does not say what the tier does at its end", string.Empty);
                    _steps.Add(_decided);
                    _reason = $"{stage}: no rule of tier {tier.Name} decided, and its debug file (written by Calico before v3.30) does not say the tier's end action: deny, unless the tier's defaultAction is Pass (kubectl get tier {tier.Name} -o yaml)";
                    return Outcome.Broken;
                }

                PolicyStep? endStep = Try(stage, tier.Name, string.Empty, -1, new PolicyProgramRule(RuleMatch.Everything, tier.EndRuleId), end, preNat,
                    $"end of tier {tier.Name}: {(end == "pass" ? "pass to the next tier" : "no policy allowed it, deny")}");
                if (endStep is { Matched: true } && end != "pass")
                {
                    _decided = endStep;
                    return Outcome.Denied;
                }
            }

            return Outcome.FellThrough;
        }

        private Outcome Profiles(string stage, IReadOnlyList<PolicyBlock> profiles)
        {
            foreach (PolicyBlock profile in profiles)
            {
                for (int i = 0; i < profile.Rules.Count; i++)
                {
                    PolicyProgramRule rule = profile.Rules[i];
                    string action = rule.Match.Action.ToLowerInvariant();
                    PolicyStep? step = Try(stage, string.Empty, profile.Name, i, rule, action, preNat: false);
                    if (step is null || !step.Matched || action == "log")
                    {
                        continue;
                    }

                    _decided = step;
                    return action == "allow" ? Outcome.Allowed : Outcome.Denied;   // in a profile, pass and next-tier deny
                }
            }

            _decided = new PolicyStep(stage, string.Empty, string.Empty, -1, null, "deny", true,
                profiles.Count == 0 ? "no profile: deny" : "no profile allowed it: deny", string.Empty);
            _steps.Add(_decided);
            return Outcome.Denied;
        }

        private PolicyStep? Try(string stage, string tier, string policy, int index, PolicyProgramRule rule, string action, bool preNat, string? why = null)
        {
            RuleMatch? m = rule.Match.ForIpVersion(_p.IpVersion);
            if (m is null)
            {
                return null;   // Felix leaves the rule out of this IP version's program
            }

            string? failed;
            try
            {
                failed = Mismatch(m, preNat);
            }
            catch (UnknownMembership u)
            {
                // The real program may or may not have matched here: nothing after this rule can be told for sure.
                var unknown = new PolicyStep(stage, tier, policy, index, rule.MatchId, action, false, $"the members of IP set {u.Set} are not known: the debug file gives no id for it (a named-port set), and the IP set map holds none under the id Felix's allocator would give it", rule.Match.Text);
                _steps.Add(unknown);
                _unknown ??= unknown;
                return unknown;
            }

            var step = new PolicyStep(stage, tier, policy, index, rule.MatchId, action, failed is null, failed ?? why ?? "matches", rule.Match.Text);
            _steps.Add(step);
            return step;
        }

        private bool In(string set, IPAddress address, int port, int proto) =>
            _sets.Contains(set, address, port, proto) ?? throw new UnknownMembership(set);

        private string? Mismatch(RuleMatch m, bool preNat)
        {
            IPAddress dst = preNat ? _pkt.PreNatDestination : _pkt.Destination;
            int dport = preNat ? _pkt.PreNatDestinationPort : _pkt.DestinationPort;
            int proto = _pkt.Protocol;
            string dstName = preNat ? "pre-DNAT destination" : "destination";

            if (m.Protocol is int p && proto != p)
            {
                return $"protocol {proto} is not {p}";
            }

            if (m.NotProtocol is int np && proto == np)
            {
                return $"protocol is {np}";
            }

            if (m.SrcNet.Count > 0 && !m.SrcPrefixes.Any(n => n.Matches(_pkt.Source)))
            {
                return $"source {_pkt.Source} is not in {string.Join(", ", m.SrcNet)}";
            }

            if (m.NotSrcPrefixes.FirstOrDefault(n => n.Matches(_pkt.Source)) is { } sn)
            {
                return $"source {_pkt.Source} is in {sn}";
            }

            if (m.DstNet.Count > 0 && !m.DstPrefixes.Any(n => n.Matches(dst)))
            {
                return $"{dstName} {dst} is not in {string.Join(", ", m.DstNet)}";
            }

            if (m.NotDstPrefixes.FirstOrDefault(n => n.Matches(dst)) is { } dn)
            {
                return $"{dstName} {dst} is in {dn}";
            }

            if (m.SrcIpSetIds.FirstOrDefault(s => !In(s, _pkt.Source, _pkt.SourcePort, proto)) is { } ss)
            {
                return $"source {_pkt.Source} is not in IP set {ss}";
            }

            if (m.NotSrcIpSetIds.FirstOrDefault(s => In(s, _pkt.Source, _pkt.SourcePort, proto)) is { } nss)
            {
                return $"source {_pkt.Source} is in IP set {nss}";
            }

            if (m.DstIpSetIds.Count > 0 && !m.DstIpSetIds.Any(s => In(s, dst, dport, proto)))
            {
                return $"{dstName} {dst} is not in IP set {string.Join(" or ", m.DstIpSetIds)}";
            }

            if (m.NotDstIpSetIds.FirstOrDefault(s => In(s, dst, dport, proto)) is { } nds)
            {
                return $"{dstName} {dst} is in IP set {nds}";
            }

            if (m.DstIpPortSetIds.FirstOrDefault(s => !In(s, dst, dport, proto)) is { } dps)
            {
                return $"{dstName} {dst}:{dport} is not in IP set {dps}";
            }

            if ((m.SrcPorts.Count > 0 || m.SrcNamedPortIpSetIds.Count > 0)
                && !m.SrcPorts.Any(r => r.Contains(_pkt.SourcePort)) && !m.SrcNamedPortIpSetIds.Any(s => In(s, _pkt.Source, _pkt.SourcePort, proto)))
            {
                return $"source port {_pkt.SourcePort} is not {Ports(m.SrcPorts, m.SrcNamedPortIpSetIds)}";
            }

            if (m.NotSrcPorts.Any(r => r.Contains(_pkt.SourcePort)) || m.NotSrcNamedPortIpSetIds.Any(s => In(s, _pkt.Source, _pkt.SourcePort, proto)))
            {
                return $"source port {_pkt.SourcePort} is {Ports(m.NotSrcPorts, m.NotSrcNamedPortIpSetIds)}";
            }

            if ((m.DstPorts.Count > 0 || m.DstNamedPortIpSetIds.Count > 0)
                && !m.DstPorts.Any(r => r.Contains(dport)) && !m.DstNamedPortIpSetIds.Any(s => In(s, dst, dport, proto)))
            {
                return $"{dstName} port {dport} is not {Ports(m.DstPorts, m.DstNamedPortIpSetIds)}";
            }

            if (m.NotDstPorts.Any(r => r.Contains(dport)) || m.NotDstNamedPortIpSetIds.Any(s => In(s, dst, dport, proto)))
            {
                return $"{dstName} port {dport} is {Ports(m.NotDstPorts, m.NotDstNamedPortIpSetIds)}";
            }

            // The ICMP type and code overlay the state's dport (PB: icmp_type at the dport offset), not the post-NAT port.
            int state = _pkt.StateDestinationPort ?? _pkt.PreNatDestinationPort;
            int type = state & 0xff, code = (state >> 8) & 0xff;
            if (m.Icmp is { } icmp && (type != icmp.Type || (icmp.Code is int c && code != c)))
            {
                return icmp.Code is null ? $"ICMP type {type} is not {icmp.Type}" : $"ICMP type/code {type}/{code} is not {icmp.Type}/{icmp.Code}";
            }

            if (m.NotIcmp is { } nicmp && type == nicmp.Type && (nicmp.Code is not int nc || code == nc))
            {
                return nicmp.Code is null ? $"ICMP type is {type}" : $"ICMP type/code is {type}/{code}";
            }

            return null;
        }

        private static string Ports(List<PortRange> ranges, List<string> named) =>
            string.Join(" or ", ranges.Select(r => r.ToString()).Concat(named.Select(n => "named port set " + n)));
    }
}
