using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

public sealed partial class CommandDataplane
{
    public IMapReader OpenMap(string pinName)
    {
        string path = PinPath(pinName);
        if (_descriptors.TryGetValue(path, out BpfMapDescriptor? known))
        {
            return new BpftoolMapReader(this, path, known);
        }

        string json;
        try
        {
            json = RunText("bpftool", "-j", "map", "show", "pinned", path);
        }
        catch (NodeCommandException ex) when (ex.ExitCode != 127)
        {
            throw BpftoolError(ex, path);
        }

        using JsonDocument doc = JsonDocument.Parse(json);
        return new BpftoolMapReader(this, path, Descriptor(doc.RootElement, pinName));
    }

    /// <summary>
    /// Opens a map whose entries are read next: one exec describes it (bpftool map show) and then
    /// dumps it, instead of one exec for each. The dump starts now; disposing the reader unread ends it.
    /// </summary>
    public IMapReader OpenMapToDump(string pinName)
    {
        string path = PinPath(pinName);
        if (Interlocked.Exchange(ref _prefetched, null) is { } prefetched)
        {
            if (prefetched.Path == path)
            {
                return new BpftoolMapReader(this, path, prefetched.Descriptor, prefetched.Session);
            }

            prefetched.Session.Dispose(); // the shell picked another pin than the catalog: read this one afresh
        }

        if (_descriptors.ContainsKey(path))
        {
            return OpenMap(pinName); // described already: the dump is one exec anyway
        }

        var session = new DumpSession(this, new[] { path }, _cancellationToken, describe: true);
        try
        {
            BpfMapDescriptor descriptor = session.Guard(() => session.Describe(path, pinName));
            _descriptors[path] = descriptor;
            return new BpftoolMapReader(this, path, descriptor, session);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Describes the maps in one exec (bpftool map show for each pin, in a shell loop), so that
    /// opening many (Get-BpfMap) costs one round trip, not one each. A pin that fails here is asked
    /// for again on its own when opened, and fails with its own error.
    /// </summary>
    public void PrepareToOpen(IReadOnlyList<string> pinNames)
    {
        var wanted = pinNames.Select(PinPath).Where(p => !_descriptors.ContainsKey(p)).ToList();
        if (wanted.Count < 2)
        {
            return; // one map: OpenMap's own exec is as cheap
        }

        // The pins go on stdin (a node may pin a hundred maps: their paths would make the URL long).
        const string script = NeedBpftool + ReadPaths + "printf '@@map %s\\n' \"$p\"; bpftool -j map show pinned \"$p\"; printf '\\n'; done";
        string text;
        try
        {
            (text, NodeCommandException? failure) = RunWithInput(new[] { "sh", "-c", script, "describe", wanted.Count.ToString(CultureInfo.InvariantCulture) }, PathLines(wanted));
            if (failure is not null)
            {
                return;
            }
        }
        catch (NodeCommandException)
        {
            return; // each map is then described on its own, with its own error
        }

        string? path = null;
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("@@map ", StringComparison.Ordinal))
            {
                path = line[6..];
            }
            else if (path is not null && line.StartsWith('{') && BpftoolJsonReader.ErrorMessage(Encoding.UTF8.GetBytes(line)) is null)
            {
                using JsonDocument doc = JsonDocument.Parse(line);
                _descriptors[path] = Descriptor(doc.RootElement, path[(path.LastIndexOf('/') + 1)..]);
                path = null;
            }
        }
    }

    private static BpfMapDescriptor Descriptor(JsonElement m, string pinName) => new(
        m.GetProperty("id").GetUInt32(),
        ParseType(m.GetProperty("type").GetString() ?? string.Empty),
        m.GetProperty("bytes_key").GetInt32(),
        m.GetProperty("bytes_value").GetInt32(),
        m.GetProperty("max_entries").GetInt32(),
        m.TryGetProperty("flags", out JsonElement f) ? f.GetUInt32() : 0,
        m.TryGetProperty("name", out JsonElement n) ? n.GetString() ?? pinName : pinName);

    /// <summary>
    /// Every map that has to be dumped to be counted is dumped in one exec, each dump on one line
    /// after a "@@map path" line, gzip'd as a single dump is; each line is counted by the same JSON
    /// reader as it streams by.
    /// </summary>
    public IReadOnlyList<long?> CountEntries(IReadOnlyList<IMapReader> maps, CancellationToken cancellationToken)
    {
        var result = new long?[maps.Count];
        var dumps = new List<(int Index, BpftoolMapReader Map)>();
        for (int i = 0; i < maps.Count; i++)
        {
            if (maps[i] is BpftoolMapReader r && r.Descriptor.Type.IsIterable() && !r.Descriptor.Type.IsArray())
            {
                dumps.Add((i, r));
            }
            else
            {
                result[i] = maps[i].CountEntries(cancellationToken);
            }
        }

        if (dumps.Count == 0)
        {
            return result;
        }

        using var session = new DumpSession(this, dumps.Select(d => d.Map.Path).ToList(), cancellationToken);
        foreach ((int index, BpftoolMapReader map) in dumps)
        {
            result[index] = session.Guard(() =>
            {
                int cpus = map.Descriptor.Type.IsPerCpu() ? PossibleCpus : 1;
                long n = 0;
                using Stream dump = session.Next(map.Path);
                foreach (RawEntryBatch b in new BpftoolJsonReader(dump, map.Descriptor, cpus, map.Path).ReadBatches(4096, cancellationToken))
                {
                    n += b.Count;
                }

                return n;
            });
        }

        session.Complete();
        return result;
    }

    public IMapWriter OpenMapForWrite(string pinName) => (BpftoolMapReader)OpenMap(pinName);

    private static Exception BpftoolError(NodeCommandException ex, string path) =>
        BpftoolFailure(ex.Node, path, ex.StandardError + ex.Message, ex, ex.StandardError.Trim(), ex.Message);

    /// <summary>bpftool's complaint about a pin as the error a local read would give: not pinned, refused, or as it says.</summary>
    private static Exception BpftoolFailure(string node, string path, string text, Exception? inner, string? detail = null, string? message = null) =>
        text.Contains("No such file", StringComparison.Ordinal)
            ? new BpfObjectNotFoundException($"{path} is not pinned on {node}.", Errno.ENOENT, path, inner)
            : text.Contains("Operation not permitted", StringComparison.Ordinal) || text.Contains("Permission denied", StringComparison.Ordinal)
                ? new BpfPermissionDeniedException($"bpftool was refused {path} on {node}: {detail ?? text.Trim()}", Errno.EPERM, path, inner)
                : new BpfException(message ?? $"bpftool could not read {path} on {node}: {text.Trim()}", 0, path, inner);

    /// <summary>bpftool's type names (libbpf map_type_name) to the kernel's numbers.</summary>
    public static BpfMapType ParseType(string name) => name switch
    {
        "hash" => BpfMapType.Hash,
        "array" => BpfMapType.Array,
        "prog_array" => BpfMapType.ProgramArray,
        "perf_event_array" => BpfMapType.PerfEventArray,
        "percpu_hash" => BpfMapType.PerCpuHash,
        "percpu_array" => BpfMapType.PerCpuArray,
        "stack_trace" => BpfMapType.StackTrace,
        "cgroup_array" => BpfMapType.CgroupArray,
        "lru_hash" => BpfMapType.LruHash,
        "lru_percpu_hash" => BpfMapType.LruPerCpuHash,
        "lpm_trie" => BpfMapType.LpmTrie,
        "array_of_maps" => BpfMapType.ArrayOfMaps,
        "hash_of_maps" => BpfMapType.HashOfMaps,
        "devmap" => BpfMapType.DevMap,
        "sockmap" => BpfMapType.SockMap,
        "cpumap" => BpfMapType.CpuMap,
        "xskmap" => BpfMapType.XskMap,
        "sockhash" => BpfMapType.SockHash,
        "queue" => BpfMapType.Queue,
        "stack" => BpfMapType.Stack,
        "devmap_hash" => BpfMapType.DevMapHash,
        "struct_ops" => BpfMapType.StructOps,
        "ringbuf" => BpfMapType.RingBuffer,
        "bloom_filter" => BpfMapType.BloomFilter,
        "user_ringbuf" => BpfMapType.UserRingBuffer,
        "arena" => BpfMapType.Arena,
        _ => BpfMapType.Unspecified,
    };

    /// <summary>The node-side path of a pin in the pin directory.</summary>
    private string PinPath(string pinName) => PinDirectory + "/" + pinName;
}
