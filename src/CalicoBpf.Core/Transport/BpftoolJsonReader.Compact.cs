using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>
/// bpftool -j's compact entries read at fixed offsets: the fast path of a remote dump (512,000
/// conntrack entries are 383 MB of such text; a tokenizer spent 1.7 s on them, this about 0.3 s).
/// </summary>
public sealed partial class BpftoolJsonReader
{
    private static ReadOnlySpan<byte> KeyOpen => "{\"key\":["u8;

    private static ReadOnlySpan<byte> ValueOpen => "],\"value\":["u8;

    /// <summary>
    /// One entry as bpftool -j prints it, {"key":["0x06",...],"value":["0x00",...]} without spaces:
    /// each byte is 6 characters at a fixed place, so the entry is read without a tokenizer. Returns
    /// the characters it took; 0 when the buffer is shorter than such an entry; -1 when it is not one
    /// (per-CPU values, a failed lookup, "formatted", other spacing: Utf8JsonReader reads those).
    /// </summary>
    private int TryReadCompact(ReadOnlySpan<byte> s, RawEntryBatch batch)
    {
        int keySize = _map.KeySize, valueSize = _map.ValueSize;
        if (_map.Type.IsPerCpu() || keySize == 0 || valueSize == 0)
        {
            return -1;
        }

        int length = KeyOpen.Length + (7 * keySize) - 1 + ValueOpen.Length + (7 * valueSize) - 1 + 2;
        if (s.Length < length)
        {
            return s.StartsWith(KeyOpen) || KeyOpen.StartsWith(s) ? 0 : -1;
        }

        if (!s.StartsWith(KeyOpen))
        {
            return -1;
        }

        int q = KeyOpen.Length;
        if (!TryReadHexList(s, ref q, batch.Keys.AsSpan(batch.Count * keySize, keySize)) || !s[q..].StartsWith(ValueOpen))
        {
            return -1;
        }

        q += ValueOpen.Length;
        if (!TryReadHexList(s, ref q, batch.Values.AsSpan(batch.Count * batch.ValueStride, valueSize)) || s[q] != (byte)']' || s[q + 1] != (byte)'}')
        {
            return -1;
        }

        batch.Count++;
        return q + 2;
    }

    /// <summary>"0x06","0x00",... into <paramref name="target"/>, exactly its length; false at the first difference.</summary>
    private static bool TryReadHexList(ReadOnlySpan<byte> s, ref int q, Span<byte> target)
    {
        for (int i = 0; i < target.Length; i++)
        {
            if (i > 0 && s[q++] != (byte)',')
            {
                return false;
            }

            int hi = HexDigit(s[q + 3]), lo = HexDigit(s[q + 4]);
            if (s[q] != (byte)'"' || s[q + 1] != (byte)'0' || (s[q + 2] | 0x20) != (byte)'x' || s[q + 5] != (byte)'"' || (hi | lo) < 0)
            {
                return false;
            }

            target[i] = (byte)((hi << 4) | lo);
            q += 6;
        }

        return true;
    }

    private static int HexDigit(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };
}
