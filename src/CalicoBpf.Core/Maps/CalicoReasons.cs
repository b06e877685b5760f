namespace CalicoBpf.Maps;

/// <summary>
/// Calico's reason codes (felix/bpf-gpl/reasons.h, enum calico_reason) release by release. They
/// number both the counters of cali_counters (up to the map's counter count) and the codes of the
/// programs' "Final result=DENY (n)" trace lines, and they moved between releases, even between
/// patch releases of one line (BLACK_HOLE came in v3.27.4 and v3.28.1, not in v3.28.0). A release
/// that changes reasons.h is one row here.
/// </summary>
public static class CalicoReasons
{
    private static readonly Dictionary<string, string> Text = new(StringComparer.Ordinal)
    {
        ["UNKNOWN"] = "unknown", ["ACCEPTED_BY_FAILSAFE"] = "accepted by failsafe", ["ACCEPTED_BY_POLICY"] = "accepted by policy",
        ["BYPASS"] = "bypass", ["DROPPED_BY_POLICY"] = "dropped by policy", ["SHORT"] = "too short", ["CSUM_FAIL"] = "checksum fail",
        ["IP_OPTIONS"] = "IP options", ["IP_MALFORMED"] = "malformed IP", ["ENCAP_FAIL"] = "encap fail", ["DECAP_FAIL"] = "decap fail",
        ["UNAUTH_SOURCE"] = "unauthorised source", ["RT_UNKNOWN"] = "unknown route", ["BLACK_HOLE"] = "blackhole route",
        ["SOURCE_COLLISION"] = "NAT source collision", ["SOURCE_COLLISION_FAILED"] = "source-collision resolution failed",
        ["CT_CREATE_FAILED"] = "CT create failed", ["REDIRECT"] = "redirect", ["REDIRECT_NEIGH"] = "redirect neigh",
        ["REDIRECT_PEER"] = "redirect peer", ["FRAG_WAIT"] = "fragment wait", ["FRAG_REORDER"] = "fragment reorder",
        ["FRAG_UNSUPPORTED"] = "fragment unsupported", ["DROPPED_BY_QOS"] = "dropped by QoS", ["RESERVED1"] = "reserved",
        ["MAGLEV_NO_BACKEND"] = "Maglev no backend", ["NO_HOST_IP"] = "no host IP (VXLAN encap)", ["ACCEPTED_BY_XDP"] = "accepted by XDP",
        ["WEP_NOT_READY"] = "WEP not ready", ["NATIFACE"] = "NAT iface",
        // v3.23's own codes.
        ["NOT_IP"] = "not IP", ["V6_WORKLOAD"] = "IPv6 workload", ["DNT"] = "do-not-track", ["PREDNAT"] = "pre-DNAT policy",
        ["POL"] = "dropped by policy", ["CT"] = "conntrack", ["CT_NAT"] = "conntrack NAT", ["ICMP_DF"] = "ICMP needs fragmentation",
    };

    private static readonly string[] V24 =
    {
        "UNKNOWN", "ACCEPTED_BY_FAILSAFE", "ACCEPTED_BY_POLICY", "BYPASS", "DROPPED_BY_POLICY", "SHORT", "CSUM_FAIL", "IP_OPTIONS",
        "IP_MALFORMED", "ENCAP_FAIL", "DECAP_FAIL", "UNAUTH_SOURCE", "RT_UNKNOWN", "ACCEPTED_BY_XDP", "WEP_NOT_READY",
    };

    private static readonly string[] V25 = V24.Append("NATIFACE").ToArray();

    private static readonly string[] BlackHole = V25[..13].Append("BLACK_HOLE").Concat(V25[13..]).ToArray();

    private static readonly string[] V30 = BlackHole[..14].Concat(new[] { "SOURCE_COLLISION", "SOURCE_COLLISION_FAILED", "CT_CREATE_FAILED" }).Concat(BlackHole[14..]).ToArray();

    private static readonly string[] V31 = V30[..17]
        .Concat(new[] { "REDIRECT", "REDIRECT_NEIGH", "REDIRECT_PEER", "FRAG_WAIT", "FRAG_REORDER", "FRAG_UNSUPPORTED", "DROPPED_BY_QOS", "RESERVED1" })
        .Concat(V30[17..]).ToArray();

    private static readonly string[] V32 = V31[..25].Append("MAGLEV_NO_BACKEND").Concat(V31[25..]).ToArray();

    private static readonly string[] V321 = V32[..26].Append("NO_HOST_IP").Concat(V32[26..]).ToArray();

    /// <summary>v3.23's reasons.h gave each reason a code of its own (0xbe policy, 0xdead unknown route).</summary>
    private static readonly Dictionary<int, string> V23 = new()
    {
        [0x00] = "UNKNOWN", [0x01] = "SHORT", [0xea] = "NOT_IP", [0x06] = "V6_WORKLOAD", [0xfa] = "FAILSAFE", [0xd0] = "DNT",
        [0xd1] = "PREDNAT", [0xbe] = "POL", [0xc0] = "CT", [0xbb] = "BYPASS", [0xc1] = "CT_NAT", [0xcf] = "CSUM_FAIL",
        [0xef] = "ENCAP_FAIL", [0xdf] = "DECAP_FAIL", [0x1c] = "ICMP_DF", [0xeb] = "IP_OPTIONS", [0xec] = "IP_MALFORMED",
        [0xed] = "UNAUTH_SOURCE", [0xdead] = "RT_UNKNOWN", [0xd9] = "ACCEPTED_BY_XDP",
    };

    /// <summary>Each release's enum, from First up to the next row (checked at every tag v3.24.0 to v3.32.1 and 87c15906f20c).</summary>
    private static readonly (CalicoRelease First, string[] Reasons)[] Releases =
    {
        (new CalicoRelease(3, 24, 0), V24),
        (new CalicoRelease(3, 25, 0), V25),
        (new CalicoRelease(3, 27, 4), BlackHole),
        (new CalicoRelease(3, 28, 0), V25),
        (new CalicoRelease(3, 28, 1), BlackHole),
        (new CalicoRelease(3, 30, 0), V30),
        (new CalicoRelease(3, 31, 0), V31),
        (new CalicoRelease(3, 32, 0), V32),
        (new CalicoRelease(3, 32, 1), V321),
    };

    /// <summary>The reasons.h identifier of a code in a release (DROPPED_BY_POLICY); null when the release has no such code.</summary>
    public static string? Id(int code, CalicoRelease release)
    {
        if (!release.AtLeast(Releases[0].First))
        {
            return V23.GetValueOrDefault(code);
        }

        string[] reasons = Releases.Last(r => release.AtLeast(r.First)).Reasons;
        return code >= 0 && code < reasons.Length ? reasons[code] : null;
    }

    /// <summary>A code's reason in words (dropped by policy); null when the release has no such code.</summary>
    public static string? Name(int code, CalicoRelease release) => Id(code, release) is { } id ? Text[id] : null;

    /// <summary>Up to v3.29 the programs print DENY codes with %x, hex without 0x (bpf-gpl/tc.c); from v3.30 with %d.</summary>
    public static bool DenyCodesInHex(CalicoRelease release) => !release.AtLeast(3, 30);
}
