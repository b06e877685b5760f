using System.Buffers;
using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>
/// Streams the output of bpftool -j map dump (reference section 5) into raw entry batches, parsing
/// as the bytes arrive: a JSON array of {"key":[...],"value":[...]} or, for per-CPU maps,
/// {"key":[...],"values":[{"cpu":n,"value":[...]}]}, bytes as "0x%02x" strings. "formatted"
/// sections are skipped; entries whose lookup failed ({"value":{"error":...}}) are skipped.
/// A whole-command error ({"error":"..."}) becomes a <see cref="BpfException"/>. Memory stays at
/// one read buffer plus one batch, whatever the map's size.
/// </summary>
public sealed partial class BpftoolJsonReader
{
    private readonly Stream _stream;
    private readonly BpfMapDescriptor _map;
    private readonly int _cpus;
    private readonly string _target;
    private byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _filled;
    private bool _eof;
    private Position _at;
    private bool _done;

    /// <summary>Where the parse stands in the top-level array.</summary>
    private enum Position
    {
        BeforeArray,
        AfterOpen,
        AfterEntry,
        AfterComma,
    }

    /// <param name="possibleCpus">The node's possible CPUs (per-CPU entries carry one value each).</param>
    public BpftoolJsonReader(Stream stream, BpfMapDescriptor map, int possibleCpus, string target)
    {
        _stream = stream;
        _map = map;
        _cpus = possibleCpus;
        _target = target;
    }

    /// <summary>Entries skipped because bpftool could not look them up (they vanished meanwhile).</summary>
    public int Vanished { get; private set; }

    /// <summary>Entries the batch has room for before it first grows.</summary>
    private const int InitialBatch = 64;

    public IEnumerable<RawEntryBatch> ReadBatches(int batchSize, CancellationToken cancellationToken)
    {
        // The batch starts small and grows (keeping its entries) up to batchSize: most dumps of a sample are
        // of small maps (counters, a few interfaces), and a full-size batch of per-CPU values is a large-object
        // allocation (1 MB for 4,096 counter entries on 2 CPUs) that each read would make and drop.
        var batch = new RawEntryBatch(_map.KeySize, _map.ValueSize, _map.ValueStride(_cpus), _cpus, _map.Type.IsPerCpu(), Math.Min(batchSize, InitialBatch));
        while (!_done)
        {
            cancellationToken.ThrowIfCancellationRequested();
            batch.Count = 0;
            while (!_done)
            {
                if (batch.Count == batch.Capacity)
                {
                    if (batch.Capacity >= batchSize)
                    {
                        break;
                    }

                    batch.Enlarge(Math.Min(batchSize, batch.Capacity * 4));
                }

                if (!TryParseNextSafely(batch))
                {
                    if (_eof)
                    {
                        throw new BpfException($"bpftool's dump of {_target} ended in the middle of its JSON ({_filled - _start} bytes left unparsed).", 0, _target);
                    }

                    Fill();
                }
            }

            if (batch.Count > 0)
            {
                yield return batch;
            }
        }
    }

    private void Fill()
    {
        // What was parsed is dropped once per read, not once per entry.
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _filled - _start);
            _filled -= _start;
            _start = 0;
        }

        if (_filled == _buffer.Length)
        {
            Array.Resize(ref _buffer, _buffer.Length * 2);
        }

        int n = _stream.Read(_buffer, _filled, _buffer.Length - _filled);
        if (n == 0)
        {
            _eof = true;
        }

        _filled += n;
    }

    private bool TryParseNextSafely(RawEntryBatch batch)
    {
        try
        {
            return TryParseNext(batch);
        }
        catch (JsonException ex)
        {
            throw new BpfException(
                _eof ? $"bpftool's dump of {_target} ended in the middle of its JSON: {ex.Message}" : $"bpftool's dump of {_target} is not valid JSON: {ex.Message}",
                0, _target, ex);
        }
        catch (InvalidOperationException ex)
        {
            throw new BpfException($"bpftool's dump of {_target} has a value of the wrong kind: {ex.Message}", 0, _target, ex);
        }
    }

    /// <summary>
    /// Parses the next piece of the top-level array (its start, a comma, an entry into the batch, its
    /// end). False when the buffer holds no complete piece yet. Entries in bpftool's compact form are
    /// read at fixed offsets (<see cref="TryReadCompact"/>); any other entry through Utf8JsonReader.
    /// </summary>
    private bool TryParseNext(RawEntryBatch batch)
    {
        ReadOnlySpan<byte> s = _buffer.AsSpan(_start, _filled - _start);
        int p = 0;
        while (p < s.Length && s[p] is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t')
        {
            p++;
        }

        _start += p;
        if (p == s.Length)
        {
            return false;
        }

        s = s[p..];
        byte c = s[0];
        switch (_at)
        {
            case Position.BeforeArray when c == (byte)'{':
                ThrowCommandError();
                break;
            case Position.BeforeArray when c != (byte)'[':
                throw new BpfException($"bpftool's dump of {_target} is not a JSON array (it starts with '{(char)c}').", 0, _target);
            case Position.BeforeArray:
                _at = Position.AfterOpen;
                _start++;
                return true;
            case Position.AfterOpen or Position.AfterEntry when c == (byte)']':
                _done = true;
                _start++;
                return true;
            case Position.AfterEntry when c == (byte)',':
                _at = Position.AfterComma;
                _start++;
                return true;
            case Position.AfterEntry:
                throw new BpfException($"bpftool's dump of {_target} has '{(char)c}' where a comma or the end of the array should be.", 0, _target);
        }

        if (c != (byte)'{')
        {
            throw new BpfException($"bpftool's dump of {_target} has '{(char)c}' where an entry should be.", 0, _target);
        }

        int used = TryReadCompact(s, batch);
        if (used == 0 && !_eof)
        {
            return false;
        }

        if (used <= 0)
        {
            var reader = new Utf8JsonReader(s, _eof, default);
            reader.Read();
            if (!TryParseEntry(ref reader, batch))
            {
                return false;
            }

            used = (int)reader.BytesConsumed;
        }

        _start += used;
        _at = Position.AfterEntry;
        return true;
    }

    /// <summary>One entry, the reader on its StartObject, into the batch. False when more input is needed.</summary>
    private bool TryParseEntry(ref Utf8JsonReader reader, RawEntryBatch batch)
    {
        int index = batch.Count;
        Span<byte> key = batch.Keys.AsSpan(index * _map.KeySize, _map.KeySize);
        Span<byte> value = batch.Values.AsSpan(index * batch.ValueStride, batch.ValueStride);
        bool haveKey = false, haveValue = false, vanished = false;
        while (true)
        {
            PropertyStep step = NextProperty(ref reader, out string? name);
            if (step == PropertyStep.More)
            {
                return false;
            }

            if (step == PropertyStep.End)
            {
                break;
            }

            switch (name)
            {
                case "key":
                    if (!ReadBytes(ref reader, key, "key", out bool keyComplete))
                    {
                        return false;
                    }

                    haveKey = keyComplete;
                    break;
                case "value" when reader.TokenType == JsonTokenType.StartObject:
                    if (!reader.TrySkip())
                    {
                        return false;
                    }

                    vanished = true;
                    break;
                case "value":
                    if (!ReadBytes(ref reader, value[.._map.ValueSize], "value", out bool valueComplete))
                    {
                        return false;
                    }

                    haveValue = valueComplete;
                    break;
                case "values":
                    if (!_map.Type.IsPerCpu())
                    {
                        throw new BpfException($"bpftool's dump of {_target} has per-CPU values, but {_target} is a {_map.Type} map.", 0, _target);
                    }

                    if (!ReadPerCpu(ref reader, value, batch.PerCpuSlot, out bool perCpuComplete))
                    {
                        return false;
                    }

                    haveValue = perCpuComplete;
                    break;
                default:
                    if (!reader.TrySkip())
                    {
                        return false;
                    }

                    break;
            }
        }

        if (vanished)
        {
            Vanished++;
            return true;
        }

        if (!haveKey || !haveValue)
        {
            throw new BpfException($"An entry of bpftool's dump of {_target} has no {(haveKey ? "value" : "key")}.", 0, _target);
        }

        batch.Count = index + 1;
        return true;
    }

    /// <summary>Reads ["0x06", ...] into <paramref name="target"/>. False when more input is needed.</summary>
    private bool ReadBytes(ref Utf8JsonReader reader, Span<byte> target, string what, out bool complete)
    {
        complete = false;
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new BpfException($"bpftool's {what} in the dump of {_target} is a {reader.TokenType}, not an array of bytes.", 0, _target);
        }

        int i = 0;
        while (true)
        {
            if (!reader.Read())
            {
                return false;
            }

            if (reader.TokenType == JsonTokenType.EndArray)
            {
                break;
            }

            if (i >= target.Length)
            {
                throw new BpfException($"A {what} in bpftool's dump of {_target} has more than the map's {target.Length} bytes.", 0, _target);
            }

            target[i++] = ParseHexByte(reader.ValueSpan, what);
        }

        if (i != target.Length)
        {
            throw new BpfException($"A {what} in bpftool's dump of {_target} has {i} bytes; the map's are {target.Length}.", 0, _target);
        }

        complete = true;
        return true;
    }

    private bool ReadPerCpu(ref Utf8JsonReader reader, Span<byte> value, int slot, out bool complete)
    {
        complete = false;
        value.Clear();
        int seen = 0;
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new BpfException($"bpftool's per-CPU values in the dump of {_target} are not an array.", 0, _target);
        }

        while (true)
        {
            if (!reader.Read())
            {
                return false;
            }

            if (reader.TokenType == JsonTokenType.EndArray)
            {
                break;
            }

            int cpu = -1;
            while (true)
            {
                PropertyStep step = NextProperty(ref reader, out string? name);
                if (step == PropertyStep.More)
                {
                    return false;
                }

                if (step == PropertyStep.End)
                {
                    break;
                }

                if (name == "cpu")
                {
                    if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out cpu) || cpu < 0)
                    {
                        throw new BpfException($"bpftool's dump of {_target} has a per-CPU value whose cpu is not a CPU number.", 0, _target);
                    }
                }
                else if (name == "value")
                {
                    int at = cpu >= 0 ? cpu : seen;
                    if (at >= _cpus)
                    {
                        throw new BpfException($"bpftool's dump of {_target} has a value for CPU {at}; the node has {_cpus} possible CPUs.", 0, _target);
                    }

                    if (!ReadBytes(ref reader, value.Slice(at * slot, _map.ValueSize), "per-CPU value", out _))
                    {
                        return false;
                    }

                    seen++;
                }
                else if (!reader.TrySkip())
                {
                    return false;
                }
            }
        }

        complete = true;
        return true;
    }

    private byte ParseHexByte(ReadOnlySpan<byte> text, string what)
    {
        // "0x%02x": exactly four characters.
        if (text.Length != 4 || text[0] != (byte)'0' || (text[1] | 0x20) != (byte)'x')
        {
            throw new BpfException($"A {what} byte in bpftool's dump of {_target} is '{System.Text.Encoding.UTF8.GetString(text)}', not 0x followed by two hex digits.", 0, _target);
        }

        return (byte)((Hex(text[2], what) << 4) | Hex(text[3], what));
    }

    private int Hex(byte c, string what) => HexDigit(c) is var d and >= 0
        ? d
        : throw new BpfException($"A {what} byte in bpftool's dump of {_target} has the non-hex digit '{(char)c}'.", 0, _target);

    private enum PropertyStep
    {
        /// <summary>On the value of the property named.</summary>
        Value,
        /// <summary>The object ended.</summary>
        End,
        /// <summary>The buffer ran out: read more and parse again.</summary>
        More,
    }

    /// <summary>Moves to the next property of an object and onto its value; or to the object's end.</summary>
    private static PropertyStep NextProperty(ref Utf8JsonReader reader, out string? name)
    {
        name = null;
        if (!reader.Read())
        {
            return PropertyStep.More;
        }

        if (reader.TokenType == JsonTokenType.EndObject)
        {
            return PropertyStep.End;
        }

        name = reader.GetString();
        return reader.Read() ? PropertyStep.Value : PropertyStep.More;
    }

    /// <summary>The message of bpftool's {"error":"..."} output, or null when the text is not one.</summary>
    public static string? ErrorMessage(ReadOnlySpan<byte> json)
    {
        try
        {
            var r = new Utf8JsonReader(json);
            while (r.Read())
            {
                if (r.TokenType == JsonTokenType.PropertyName && r.CurrentDepth == 1 && r.ValueTextEquals("error") && r.Read() && r.TokenType == JsonTokenType.String)
                {
                    return r.GetString();
                }
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    private void ThrowCommandError()
    {
        // {"error":"..."}: bpftool failed as a whole (no map, no permission). It is small: read it all.
        while (!_eof)
        {
            Fill();
        }

        string message = ErrorMessage(_buffer.AsSpan(0, _filled)) ?? "bpftool failed";
        throw message.Contains("No such file", StringComparison.Ordinal)
            ? new BpfObjectNotFoundException($"bpftool could not dump {_target}: {message}", Errno.ENOENT, _target)
            : message.Contains("Operation not permitted", StringComparison.Ordinal) || message.Contains("Permission denied", StringComparison.Ordinal)
                ? new BpfPermissionDeniedException($"bpftool could not dump {_target}: {message}", Errno.EPERM, _target)
                : new BpfException($"bpftool could not dump {_target}: {message}", 0, _target);
    }
}
