using CalicoBpf.Maps;
using CalicoBpf.Interop;

namespace CalicoBpf.Trace;

/// <summary>
/// Parses kernel trace lines (reference felix-bpf-config.md section 8). Both kernel formats are read:
/// "comm-pid [cpu] flags ts: bpf_trace_printk: msg" and the older "... ts: 0: msg". A line of no known
/// shape is returned with its raw text as the message, never an exception.
/// </summary>
public static partial class TraceLogParser
{
    [GeneratedRegex(@"^\s*(?<comm>.+?)-(?<pid>\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(?<cpu>\d+)\]\s+(?:(?<flags>[^\s\[\]]+)\s+)?(?<ts>\d+\.\d+):\s+(?<event>[\w.]+):\s?(?<msg>.*)$", RegexOptions.CultureInvariant)]
    private static partial Regex KernelLine();

    [GeneratedRegex(@"^(?<v6>IPv6 )?(?:(?<special>CTLB-V46--------|CTLB-V6---------|CTLB------------|CT-CLEANER------|CALI-C)|(?<tag>[^\s:]{15}|[^\s:]{8})-(?<dir>[IEX])): (?<body>.*)$", RegexOptions.CultureInvariant)]
    private static partial Regex CalicoTag();

    [GeneratedRegex(@"Final result=(?<result>ALLOW|DENY) (?:rc (?<rc>-?\d+)|\((?<code>-?(?:0x[0-9a-fA-F]+|[0-9a-fA-F]+))\))\.(?: Program execution time: (?<ns>\d+)ns)?", RegexOptions.CultureInvariant)]
    private static partial Regex FinalResult();

    /// <summary>
    /// Seconds a timestamp may have: since boot for the default clock, since 1970 for tai, far beyond either;
    /// their nanoseconds still fit an unsigned 64-bit number.
    /// </summary>
    private const long MaxSeconds = 10_000_000_000;

    /// <summary>
    /// A return code as the program prints it (decimal or 0x hex, maybe negative; <paramref name="bareHex"/>:
    /// hex without 0x, as DENY codes are up to v3.29); null when it does not fit an int.
    /// </summary>
    private static int? ParseCode(string raw, bool bareHex)
    {
        bool negative = raw.StartsWith('-');
        string digits = raw.TrimStart('-');
        bool prefixed = digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        return (prefixed || bareHex
                ? int.TryParse(prefixed ? digits[2..] : digits, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int value)
                : int.TryParse(digits, NumberStyles.Integer, CultureInfo.InvariantCulture, out value))
            ? (negative ? -value : value)
            : null;
    }

    /// <summary>A DENY code's reason in the newest release's numbering.</summary>
    public static string? ReasonName(int code) => CalicoReasons.Name(code, CalicoRelease.Newest);

    /// <summary>
    /// A line's "S.UUUUUU" timestamp, exactly (a double loses the microseconds of a clock counting from
    /// 1970, as trace_clock tai does); null when it does not fit <see cref="MaxSeconds"/>.
    /// </summary>
    private static TimeSpan? Seconds(string text)
    {
        int dot = text.IndexOf('.', StringComparison.Ordinal);
        string whole = dot < 0 ? text : text[..dot], fraction = dot < 0 ? string.Empty : text[(dot + 1)..];
        if (!long.TryParse(whole, NumberStyles.None, CultureInfo.InvariantCulture, out long seconds) || seconds > MaxSeconds)
        {
            return null;
        }

        // Ticks are 100 ns: the first 7 digits of the fraction.
        string ticks = fraction.Length > 7 ? fraction[..7] : fraction.PadRight(7, '0');
        return long.TryParse(ticks, NumberStyles.None, CultureInfo.InvariantCulture, out long t)
            ? TimeSpan.FromTicks((seconds * TimeSpan.TicksPerSecond) + t)
            : null;
    }

    /// <summary>A time of the node's monotonic clock on the trace buffer's clock, which leads it by <paramref name="offset"/> ns (<see cref="Transport.INodeTrace.TraceClockOffset"/>).</summary>
    public static ulong ToTraceClock(ulong monotonic, long offset) =>
        offset >= 0 ? monotonic + (ulong)offset : monotonic - Math.Min(monotonic, (ulong)(-offset));

    /// <summary>A trace timestamp on the node's monotonic clock (the clock <see cref="ClockSample"/> turns into wall time); 0 at the least.</summary>
    public static ulong FromTraceClock(ulong traceNanoseconds, long offset) =>
        offset >= 0 ? traceNanoseconds - Math.Min(traceNanoseconds, (ulong)offset) : traceNanoseconds + (ulong)(-offset);

    /// <summary>
    /// One line of the trace buffer. <paramref name="release"/> is the node's Calico release: up to
    /// v3.29 DENY codes are hex without 0x, and reason numbers moved between releases (null: the newest).
    /// Interface tags are 15 characters, or 8 in v3.23 and v3.24 (felix/bpf/binary.go PatchLogPrefix
    /// trims the name to 8 and pads it with '-': "ens192---E"), where a longer name is cut to 8.
    /// </summary>
    public static TraceLogEntry Parse(string line, string node, ClockSample? clock = null, CalicoRelease? release = null, long traceClockOffset = 0)
    {
        CalicoRelease r = release ?? CalicoRelease.Newest;
        Match k = KernelLine().Match(line);
        if (!k.Success)
        {
            return new TraceLogEntry { Node = node, Message = line, RawLine = line };
        }

        // Numbers that do not fit (a corrupted or foreign line) make it a raw line, never an exception.
        if (Seconds(k.Groups["ts"].Value) is not { } ts
            || !int.TryParse(k.Groups["pid"].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int pid)
            || !int.TryParse(k.Groups["cpu"].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int cpu))
        {
            return new TraceLogEntry { Node = node, Message = line, RawLine = line };
        }

        string msg = k.Groups["msg"].Value;
        Match t = CalicoTag().Match(msg);
        string body = t.Success ? t.Groups["body"].Value : msg;
        TraceDirection direction = TraceDirection.None;
        string? iface = null;
        string? tag = null;
        if (t.Success && t.Groups["special"].Success)
        {
            tag = t.Groups["special"].Value;
            // Up to v3.24 the connect-time programs log with the plain prefix and -C (bpf-gpl/log.h CALI_LOG_FLAG).
            direction = tag.StartsWith("CTLB", StringComparison.Ordinal) || tag == "CALI-C" ? TraceDirection.ConnectTimeLoadBalancer : TraceDirection.ConntrackCleaner;
        }
        else if (t.Success)
        {
            tag = t.Groups["tag"].Value + "-" + t.Groups["dir"].Value;
            iface = t.Groups["tag"].Value.TrimEnd('-');
            direction = t.Groups["dir"].Value switch { "I" => TraceDirection.Ingress, "E" => TraceDirection.Egress, _ => TraceDirection.Xdp };
        }

        string? result = null;
        int? code = null;
        string? reason = null;
        TimeSpan? exec = null;
        long? execNs = null;
        Match f = FinalResult().Match(body);
        if (f.Success)
        {
            result = f.Groups["result"].Value;
            string raw = f.Groups["rc"].Success ? f.Groups["rc"].Value : f.Groups["code"].Value;
            code = ParseCode(raw, result == "DENY" && f.Groups["code"].Success && CalicoReasons.DenyCodesInHex(r));
            reason = result == "DENY" && code is { } c ? CalicoReasons.Name(c, r) : null;
            if (f.Groups["ns"].Success)
            {
                if (long.TryParse(f.Groups["ns"].Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long ns))
                {
                    execNs = ns;
                    exec = TimeSpan.FromTicks(ns / 100);
                }
            }
        }

        return new TraceLogEntry
        {
            Node = node,
            Process = k.Groups["comm"].Value.Trim(),
            Pid = pid,
            Cpu = cpu,
            Flags = k.Groups["flags"].Success ? k.Groups["flags"].Value : null,
            TimestampValue = ts,
            Time = clock?.WallTimeOf(FromTraceClock((ulong)ts.Ticks * 100, traceClockOffset)),
            Tag = tag,
            Interface = iface,
            Direction = direction,
            IPv6 = t.Success && t.Groups["v6"].Success,
            Message = body,
            Result = result,
            Code = code,
            Reason = reason,
            ExecutionTimeValue = exec,
            ExecutionNanoseconds = execNs,
            RawLine = line,
        };
    }
}
