using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

public sealed partial class CommandDataplane
{
    /// <summary>Reads with bpftool's dump; writes with bpftool map delete / update, many keys per exec.</summary>
    private sealed class BpftoolMapReader : IMapWriter
    {
        /// <summary>
        /// Keys per exec. They travel on stdin, not in the URL (proxies cap request lines at 8 to 16 KB): the
        /// limit only bounds one exec's input (about 750 KB for IPv6 conntrack keys) and output.
        /// </summary>
        private const int KeysPerExec = 4096;

        /// <summary>
        /// Keys of one chunk found gone by a batch before the rest of the chunk goes through the per-key loop:
        /// each costs an exec (a round trip), the loop about a millisecond a key. The next chunk tries a batch again.
        /// </summary>
        private const int GoneKeysBeforeLoop = 16;

        /// <summary>The batch's last line: no bpftool command, so batch stops there (its exit code says failure, the output says done).</summary>
        private const string EndOfKeys = "calicobpf-end-of-keys";

        private readonly CommandDataplane _node;
        private readonly string _path;

        /// <summary>The pin on the node.</summary>
        public string Path => _path;

        /// <summary>A dump already under way in the exec that described the map (OpenMapToDump).</summary>
        private DumpSession? _pending;

        public BpftoolMapReader(CommandDataplane node, string path, BpfMapDescriptor descriptor, DumpSession? pending = null)
        {
            _node = node;
            _path = path;
            Descriptor = descriptor;
            _pending = pending;
        }

        public BpfMapDescriptor Descriptor { get; }

        public IEnumerable<RawEntryBatch> ReadEntries(CancellationToken cancellationToken)
        {
            if (!Descriptor.Type.IsIterable())
            {
                throw new BpfNotSupportedException($"{_path} is a {Descriptor.Type} map; its entries cannot be dumped.", Errno.EOPNOTSUPP, _path);
            }

            int cpus = Descriptor.Type.IsPerCpu() ? _node.PossibleCpus : 1;

            using DumpSession session = Interlocked.Exchange(ref _pending, null) ?? new DumpSession(_node, new[] { _path }, cancellationToken);
            var reader = new BpftoolJsonReader(session.Guard(() => session.Next(_path)), Descriptor, cpus, _path);
            using IEnumerator<RawEntryBatch> batches = reader.ReadBatches(4096, cancellationToken).GetEnumerator();
            while (session.Guard(batches.MoveNext))
            {
                yield return batches.Current;
            }

            session.Complete();
        }

        public long? CountEntries(CancellationToken cancellationToken)
        {
            if (Descriptor.Type.IsArray())
            {
                return Descriptor.MaxEntries;
            }

            if (!Descriptor.Type.IsIterable())
            {
                return null;
            }

            long n = 0;
            foreach (RawEntryBatch b in ReadEntries(cancellationToken))
            {
                n += b.Count;
            }

            return n;
        }

        public int ValueStride => Descriptor.ValueStride(Descriptor.Type.IsPerCpu() ? _node.PossibleCpus : 1);

        public bool Delete(ReadOnlySpan<byte> key) => DeleteMany(new[] { key.ToArray() }) == 1;

        public int DeleteMany(IReadOnlyList<byte[]> keys)
        {
            // The keys go on the exec's stdin, so the request's URL stays small whatever their number.
            // bpftool batch deletes them in one process; it stops at the first command that fails, and a
            // key already gone fails: that key counts as gone and the batch goes on after it in a new exec.
            // When many keys of a chunk are gone, the rest of that chunk goes through a shell loop, one bpftool
            // per key, which tells each key apart; so does everything when a batch fails otherwise or the pin
            // path cannot be written in a batch line.
            int deleted = 0;
            bool batch = BatchSafe(_path);
            int i = 0;
            while (i < keys.Count)
            {
                int chunkEnd = Math.Min(i + KeysPerExec, keys.Count);
                int gone = 0;
                bool goneBefore = false; // the key before this batch's first was found gone
                while (i < chunkEnd)
                {
                    IReadOnlyList<byte[]> rest = keys.Skip(i).Take(chunkEnd - i).ToList();
                    if (batch && gone < GoneKeysBeforeLoop)
                    {
                        (int batchDeleted, bool failedOnGone) = DeleteInBatch(rest);
                        goneBefore &= batchDeleted == 0;
                        deleted += batchDeleted;
                        i += batchDeleted;
                        if (i == chunkEnd)
                        {
                            break;
                        }

                        if (failedOnGone)
                        {
                            // Two gone keys in a row say the keys are gone in runs (an earlier removal, a
                            // stale listing): the loop is cheaper than an exec per key from here.
                            gone = batchDeleted == 0 && goneBefore ? GoneKeysBeforeLoop : gone + 1;
                            goneBefore = true;
                            i++; // the key that failed: gone, not deleted
                        }
                        else
                        {
                            batch = false; // another failure: the loop decides key by key from here
                        }

                        continue;
                    }

                    deleted += DeleteInLoop(rest);
                    i = chunkEnd;
                }
            }

            return deleted;
        }

        /// <summary>Whether the pin path can stand in a batch line as it is (bpftool's batch parser splits on blanks, quotes and '#').</summary>
        private static bool BatchSafe(string path) => path.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '_' or '-' or '.' or ':' or '+' or '@' or '=' or ',');

        /// <summary>
        /// One bpftool batch over the keys: how many it deleted before it stopped (in order: the keys before
        /// the one that failed), and whether it stopped because that key was already gone.
        /// </summary>
        private (int Deleted, bool FailedOnGone) DeleteInBatch(IReadOnlyList<byte[]> keys)
        {
            var input = new StringBuilder(keys.Count * (40 + _path.Length + 3 * (keys.Count > 0 ? keys[0].Length : 0)));
            foreach (byte[] k in keys)
            {
                input.Append("map delete pinned ").Append(_path).Append(" key hex ").Append(Hex(k)).Append('\n');
            }

            input.Append(EndOfKeys).Append('\n');
            string[] argv = { "bpftool", "-j", "batch", "file", "-" };
            (string text, NodeCommandException? failure) = _node.RunWithInput(argv, Encoding.ASCII.GetBytes(input.ToString()));
            int exit = failure?.ExitCode ?? 0;

            // [{"command":["map","delete",...],"output":null}, ..., then either the end line's
            // {"command":["calicobpf-end-of-keys"],"output":null} or the failing one's {"output":{"error":"..."}}].
            // One object per key is the outcome line the silence watch needs; bpftool flushes them as it goes.
            int done = 0;
            try
            {
                using JsonDocument doc = JsonDocument.Parse(text);
                foreach (JsonElement o in doc.RootElement.EnumerateArray())
                {
                    JsonElement command = o.GetProperty("command");
                    string first = command.ValueKind == JsonValueKind.Array ? command[0].GetString() ?? string.Empty : command.GetString() ?? string.Empty;
                    JsonElement output = o.TryGetProperty("output", out JsonElement v) ? v : default;
                    bool failed = output.ValueKind == JsonValueKind.Object && output.TryGetProperty("error", out _);
                    if (first.StartsWith(EndOfKeys, StringComparison.Ordinal) && done == keys.Count)
                    {
                        return (done, false);
                    }

                    if (first != "map" || done >= keys.Count)
                    {
                        break;
                    }

                    if (failed)
                    {
                        string error = output.GetProperty("error").GetString() ?? string.Empty;
                        return (done, error.StartsWith("delete failed", StringComparison.Ordinal) && error.Contains("No such file or directory", StringComparison.Ordinal));
                    }

                    done++;
                }
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException or KeyNotFoundException or IndexOutOfRangeException)
            {
                throw NotOnePerKey(keys.Count, done, exit, ex);
            }

            throw NotOnePerKey(keys.Count, done, exit, null);
        }

        private BpfException NotOnePerKey(int keys, int outcomes, int exit, Exception? inner) =>
            new($"Deleting {keys} keys from {_path} on {_node.Node} gave {outcomes} outcomes, not one per key: the node's output was unexpected"
                + (exit != 0 ? $" (bpftool batch ended with exit code {exit})." : "."), 0, _path, inner);

        /// <summary>
        /// A shell loop, one bpftool per key, told on stdin which keys (a line each) and in argv how many: it
        /// never waits for the end of stdin, which exec over v4 cannot signal. A line per key (1: deleted, 0:
        /// gone) keeps the session talking, so -TimeoutSec's silence watch never mistakes a long run for a stuck node.
        /// </summary>
        private int DeleteInLoop(IReadOnlyList<byte[]> keys)
        {
            const string script = "p=$1; n=$2; while [ \"$n\" -gt 0 ] && read -r k; do n=$((n-1)); if bpftool map delete pinned \"$p\" key hex $k 2>/dev/null; then echo 1; else echo 0; fi; done";
            string input = string.Concat(keys.Select(k => Hex(k) + "\n"));
            string[] argv = { "sh", "-c", script, "delete", _path, keys.Count.ToString(CultureInfo.InvariantCulture) };
            (string text, NodeCommandException? failure) = _node.RunWithInput(argv, Encoding.ASCII.GetBytes(input));
            int exit = failure?.ExitCode ?? 0;
            string[] outcomes = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (exit != 0 || outcomes.Length != keys.Count || outcomes.Any(o => o is not ("0" or "1")))
            {
                throw new BpfException($"Deleting {keys.Count} keys from {_path} on {_node.Node} gave {outcomes.Length} outcomes, not one per key: the node's output was unexpected"
                    + (exit != 0 ? $" (the delete script ended with exit code {exit})." : "."), 0, _path);
            }

            return outcomes.Count(o => o == "1");
        }

        public bool UpdateExisting(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            // bpftool writes one value to every CPU of a per-CPU map: the first CPU's copy is the value.
            // Key and value come on stdin, a line each: as arguments, each byte was a command= parameter
            // of the exec URL (11 characters a byte; a counters value of 27 counters alone took 2.4 KB).
            ReadOnlySpan<byte> one = value[..Descriptor.ValueSize];
            const string script = "IFS= read -r k && IFS= read -r v || exit 2; exec bpftool map update pinned \"$1\" key hex $k value hex $v exist";
            string input = Hex(key.ToArray()) + "\n" + Hex(one.ToArray()) + "\n";
            string[] argv = { "sh", "-c", script, "update", _path };
            (_, NodeCommandException? failure) = _node.RunWithInput(argv, Encoding.ASCII.GetBytes(input));
            if (failure is null)
            {
                return true;
            }

            return (failure.StandardError + failure.Message).Contains("No such file", StringComparison.Ordinal) ? false : throw failure;
        }

        private static string Hex(byte[] bytes) => string.Join(' ', bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

        public void Dispose() => Interlocked.Exchange(ref _pending, null)?.Dispose();
    }
}
