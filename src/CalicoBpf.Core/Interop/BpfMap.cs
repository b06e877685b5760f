namespace CalicoBpf.Interop;

/// <summary>What the kernel says about a map (struct bpf_map_info).</summary>
public sealed record BpfMapDescriptor(
    uint Id,
    BpfMapType Type,
    int KeySize,
    int ValueSize,
    int MaxEntries,
    uint Flags,
    string Name)
{
    /// <summary>Bytes one entry's value takes in a lookup buffer: per-CPU maps hold one 8-byte-rounded copy per possible CPU.</summary>
    public int ValueStride(int possibleCpus) =>
        Type.IsPerCpu() ? RoundUp8(ValueSize) * possibleCpus : ValueSize;

    internal static int RoundUp8(int n) => (n + 7) & ~7;
}

/// <summary>
/// An open BPF map: a file descriptor and its info. Reads stream in batches through
/// <see cref="ReadEntries"/>; nothing here ever holds a whole map.
/// </summary>
public sealed unsafe class BpfMap : IDisposable
{
    private int _fd;

    private BpfMap(int fd, BpfMapDescriptor descriptor, string? path)
    {
        _fd = fd;
        Descriptor = descriptor;
        Path = path;
    }

    public BpfMapDescriptor Descriptor { get; }

    /// <summary>The pin the map was opened from, or null for a map created and not pinned.</summary>
    public string? Path { get; private set; }

    public int FileDescriptor => _fd >= 0 ? _fd : throw new ObjectDisposedException(nameof(BpfMap));

    private string Target => Path ?? Descriptor.Name;

    /// <summary>Opens a pinned map. Read-only by default, as bpftool does for dumps.</summary>
    public static BpfMap OpenPinned(string path, bool writable = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        KernelInfo.EnsureLinux();
        byte[] pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = pathBytes)
        {
            var attr = new BpfSyscall.ObjAttr
            {
                PathName = (ulong)p,
                FileFlags = writable ? 0 : BpfSyscall.BPF_F_RDONLY,
            };
            long fd = BpfSyscall.Call(BpfCommand.ObjGet, ref attr);
            if (fd < 0)
            {
                throw BpfException.FromErrno((int)-fd, "bpf(BPF_OBJ_GET)", path);
            }

            string kind = DescribeFd((int)fd);
            if (kind != "anon_inode:bpf-map")
            {
                Libc.close((int)fd);
                throw new BpfInvalidArgumentException($"{path} is a pinned {kind.Replace("anon_inode:", string.Empty)}, not a BPF map.", Errno.EINVAL, path);
            }

            try
            {
                return new BpfMap((int)fd, ReadInfo((int)fd, path), path);
            }
            catch
            {
                Libc.close((int)fd);
                throw;
            }
        }
    }

    /// <summary>Creates a map (fixtures, the demo and tests create maps with Calico's exact names and sizes).</summary>
    public static BpfMap Create(BpfMapType type, int keySize, int valueSize, int maxEntries, string name, uint flags = 0)
    {
        KernelInfo.EnsureLinux();
        var attr = new BpfSyscall.MapCreateAttr
        {
            MapType = (uint)type,
            KeySize = (uint)keySize,
            ValueSize = (uint)valueSize,
            MaxEntries = (uint)maxEntries,
            MapFlags = flags,
        };
        byte[] nameBytes = Encoding.ASCII.GetBytes(name);
        int n = Math.Min(nameBytes.Length, 15);
        for (int i = 0; i < n; i++)
        {
            attr.MapName[i] = nameBytes[i];
        }

        long fd = BpfSyscall.Call(BpfCommand.MapCreate, ref attr);
        if (fd < 0)
        {
            throw BpfException.FromErrno((int)-fd, $"bpf(BPF_MAP_CREATE {type} key {keySize} value {valueSize} max {maxEntries})", name);
        }

        return new BpfMap((int)fd, ReadInfo((int)fd, name), null);
    }

    /// <summary>Pins the map at a path on a bpffs mount.</summary>
    public void Pin(string path)
    {
        byte[] pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        fixed (byte* p = pathBytes)
        {
            var attr = new BpfSyscall.ObjAttr { PathName = (ulong)p, BpfFd = (uint)FileDescriptor };
            long rc = BpfSyscall.Call(BpfCommand.ObjPin, ref attr);
            if (rc < 0)
            {
                throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_PIN)", path);
            }
        }

        Path = path;
    }

    private static BpfMapDescriptor ReadInfo(int fd, string target)
    {
        var info = default(BpfSyscall.MapInfo);
        var attr = new BpfSyscall.InfoAttr
        {
            BpfFd = (uint)fd,
            InfoLen = (uint)sizeof(BpfSyscall.MapInfo),
            Info = (ulong)&info,
        };
        long rc = BpfSyscall.Call(BpfCommand.ObjGetInfoByFd, ref attr);
        if (rc < 0)
        {
            throw BpfException.FromErrno((int)-rc, "bpf(BPF_OBJ_GET_INFO_BY_FD)", target);
        }

        var name = new ReadOnlySpan<byte>(info.Name, 16);
        int len = name.IndexOf((byte)0);
        string mapName = Encoding.ASCII.GetString(len < 0 ? name : name[..len]);
        return new BpfMapDescriptor(info.Id, (BpfMapType)info.Type, (int)info.KeySize, (int)info.ValueSize,
            (int)info.MaxEntries, info.MapFlags, mapName);
    }

    private static string DescribeFd(int fd)
    {
        try
        {
            return new FileInfo($"/proc/self/fd/{fd}").LinkTarget ?? "unknown";
        }
        catch (IOException)
        {
            return "anon_inode:bpf-map";
        }
    }

    /// <summary>Looks one key up. Returns false when the key is absent.</summary>
    public bool TryLookup(ReadOnlySpan<byte> key, Span<byte> value)
    {
        CheckKey(key);
        if (value.Length < Descriptor.ValueStride(KernelInfo.PossibleCpuCount))
        {
            throw new ArgumentException($"The value buffer holds {value.Length} bytes; {Target} needs {Descriptor.ValueStride(KernelInfo.PossibleCpuCount)}.", nameof(value));
        }

        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            var attr = new BpfSyscall.ElemAttr { MapFd = (uint)FileDescriptor, Key = (ulong)k, ValueOrNextKey = (ulong)v };
            long rc = BpfSyscall.Call(BpfCommand.MapLookupElem, ref attr);
            if (rc == -Errno.ENOENT)
            {
                return false;
            }

            if (rc < 0)
            {
                throw BpfException.FromErrno((int)-rc, "bpf(BPF_MAP_LOOKUP_ELEM)", Target);
            }

            return true;
        }
    }

    /// <summary>Writes one entry. A per-CPU map takes one rounded copy per possible CPU.</summary>
    public void Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, BpfUpdateFlags flags = BpfUpdateFlags.Any)
    {
        CheckKey(key);
        int stride = Descriptor.ValueStride(KernelInfo.PossibleCpuCount);
        if (value.Length != stride)
        {
            throw new ArgumentException($"{Target} takes values of {stride} bytes; {value.Length} were given.", nameof(value));
        }

        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            var attr = new BpfSyscall.ElemAttr { MapFd = (uint)FileDescriptor, Key = (ulong)k, ValueOrNextKey = (ulong)v, Flags = (ulong)flags };
            long rc = BpfSyscall.Call(BpfCommand.MapUpdateElem, ref attr);
            if (rc < 0)
            {
                throw BpfException.FromErrno((int)-rc, "bpf(BPF_MAP_UPDATE_ELEM)", Target);
            }
        }
    }

    /// <summary>Deletes one key. Returns false when it was not there.</summary>
    public bool Delete(ReadOnlySpan<byte> key)
    {
        CheckKey(key);
        fixed (byte* k = key)
        {
            var attr = new BpfSyscall.ElemAttr { MapFd = (uint)FileDescriptor, Key = (ulong)k };
            long rc = BpfSyscall.Call(BpfCommand.MapDeleteElem, ref attr);
            if (rc == -Errno.ENOENT)
            {
                return false;
            }

            if (rc < 0)
            {
                throw BpfException.FromErrno((int)-rc, "bpf(BPF_MAP_DELETE_ELEM)", Target);
            }

            return true;
        }
    }

    /// <summary>The key after <paramref name="key"/> (the first key when it is empty). False at the end.</summary>
    public bool TryGetNextKey(ReadOnlySpan<byte> key, Span<byte> nextKey)
    {
        fixed (byte* k = key)
        fixed (byte* n = nextKey)
        {
            var attr = new BpfSyscall.ElemAttr
            {
                MapFd = (uint)FileDescriptor,
                Key = key.IsEmpty ? 0 : (ulong)k,
                ValueOrNextKey = (ulong)n,
            };
            long rc = BpfSyscall.Call(BpfCommand.MapGetNextKey, ref attr);
            if (rc == -Errno.ENOENT)
            {
                return false;
            }

            if (rc < 0)
            {
                throw BpfException.FromErrno((int)-rc, "bpf(BPF_MAP_GET_NEXT_KEY)", Target);
            }

            return true;
        }
    }

    /// <summary>
    /// Streams every entry, batch by batch. Uses BPF_MAP_LOOKUP_BATCH where the kernel and map
    /// type allow it and falls back to GET_NEXT_KEY + LOOKUP_ELEM otherwise. The batch object
    /// and its buffers are reused: copy out what you keep before asking for the next batch.
    /// </summary>
    public IEnumerable<RawEntryBatch> ReadEntries(int batchSize = 4096, MapReadMode mode = MapReadMode.Auto,
        CancellationToken cancellationToken = default)
    {
        if (!Descriptor.Type.IsIterable())
        {
            throw new BpfNotSupportedException(
                $"{Target} is a {Descriptor.Type} map; its entries cannot be dumped.", Errno.EOPNOTSUPP, Target);
        }

        return mode == MapReadMode.KeyByKey
            ? ReadKeyByKey(batchSize, cancellationToken)
            : ReadBatched(batchSize, mode == MapReadMode.Auto, cancellationToken);
    }

    /// <summary>Entries the first batch lookup asks for.</summary>
    private const int InitialBatch = 256;

    private IEnumerable<RawEntryBatch> ReadBatched(int batchSize, bool allowFallback, CancellationToken ct)
    {
        int cpus = KernelInfo.PossibleCpuCount;
        // The first call asks for a few entries, and each call filled over half for four times more, up to
        // batchSize (a hash map's batch ends at a bucket's edge, so it is rarely exactly full): a small map (a
        // node's counters, read once a sample) never costs a full-size buffer, which for per-CPU values is a
        // large-object allocation (1.7 MB for 4,096 counter entries on 2 CPUs).
        var batch = new RawEntryBatch(Descriptor.KeySize, Descriptor.ValueSize, Descriptor.ValueStride(cpus), cpus,
            Descriptor.Type.IsPerCpu(), Math.Min(batchSize, InitialBatch));
        int tokenSize = Math.Max(Descriptor.KeySize, 8);
        byte[] inToken = new byte[tokenSize];
        byte[] outToken = new byte[tokenSize];
        bool first = true;
        bool done = false;
        while (!done)
        {
            ct.ThrowIfCancellationRequested();
            long rc = LookupBatch(first, inToken, outToken, batch, out uint count);

            if (rc < 0)
            {
                int errno = (int)-rc;
                if (errno == Errno.ENOENT)
                {
                    done = true;
                }
                else if (errno == Errno.ENOSPC && count == 0)
                {
                    // One hash bucket holds more entries than the buffer: grow and ask again.
                    batch.Grow(batch.Capacity * 2);
                    continue;
                }
                else if (first && allowFallback && errno is Errno.EINVAL or Errno.ENOTSUPP or Errno.EOPNOTSUPP or Errno.ENOSYS or Errno.EPERM)
                {
                    // LPM tries and older kernels have no batch lookup. EPERM appears on kernels
                    // where batch ops need a capability the caller lacks; key by key may still work.
                    foreach (RawEntryBatch b in ReadKeyByKey(batchSize, ct))
                    {
                        yield return b;
                    }

                    yield break;
                }
                else
                {
                    throw BpfException.FromErrno(errno, "bpf(BPF_MAP_LOOKUP_BATCH)", Target);
                }
            }

            first = false;
            (inToken, outToken) = (outToken, inToken);
            if (count > 0)
            {
                batch.Count = (int)count;
                yield return batch;
                if (!done && count * 2 > batch.Capacity && batch.Capacity < batchSize)
                {
                    batch.Grow(Math.Min(batchSize, batch.Capacity * 4));
                }
            }
        }
    }

    private long LookupBatch(bool first, byte[] inToken, byte[] outToken, RawEntryBatch batch, out uint count)
    {
        fixed (byte* inPtr = inToken)
        fixed (byte* outPtr = outToken)
        fixed (byte* keys = batch.Keys)
        fixed (byte* values = batch.Values)
        {
            var attr = new BpfSyscall.BatchAttr
            {
                InBatch = first ? 0 : (ulong)inPtr,
                OutBatch = (ulong)outPtr,
                Keys = (ulong)keys,
                Values = (ulong)values,
                Count = (uint)batch.Capacity,
                MapFd = (uint)FileDescriptor,
            };
            long rc = BpfSyscall.Call(BpfCommand.MapLookupBatch, ref attr);
            count = attr.Count;
            return rc;
        }
    }

    private IEnumerable<RawEntryBatch> ReadKeyByKey(int batchSize, CancellationToken ct)
    {
        int cpus = KernelInfo.PossibleCpuCount;
        int keySize = Descriptor.KeySize;
        int stride = Descriptor.ValueStride(cpus);
        var batch = new RawEntryBatch(keySize, Descriptor.ValueSize, stride, cpus, Descriptor.Type.IsPerCpu(), batchSize);
        byte[] previous = new byte[keySize];
        byte[] next = new byte[keySize];
        bool havePrevious = false;
        var seen = new HashSet<byte[]>(ByteArrayComparer.Instance);
        long bound = 10L * Math.Max(Descriptor.MaxEntries, 1) + 1000;
        long steps = 0;
        int filled = 0;
        while (true)
        {
            if ((steps & 255) == 0)
            {
                ct.ThrowIfCancellationRequested();
            }

            if (!TryGetNextKey(havePrevious ? previous : ReadOnlySpan<byte>.Empty, next))
            {
                break;
            }

            if (++steps > bound)
            {
                throw new BpfException(
                    $"{Target} kept changing while it was read key by key; gave up after {steps - 1} steps (10 x max_entries). Try again, or read it on a quieter node.",
                    0, Target);
            }

            // When the previous key vanished, the kernel restarts from the first key: skip what was already read.
            byte[] keyCopy = next.ToArray();
            bool isNew = seen.Add(keyCopy);
            (previous, next) = (next, previous);
            havePrevious = true;
            if (!isNew)
            {
                continue;
            }

            if (!TryLookup(keyCopy, batch.Values.AsSpan(filled * stride, stride)))
            {
                continue; // vanished between the two calls
            }

            keyCopy.CopyTo(batch.Keys, filled * keySize);
            filled++;
            if (filled == batch.Capacity)
            {
                batch.Count = filled;
                yield return batch;
                filled = 0;
            }
        }

        if (filled > 0)
        {
            batch.Count = filled;
            yield return batch;
        }
    }

    /// <summary>Counts entries without decoding them (array maps are always full).</summary>
    public long CountEntries(CancellationToken cancellationToken = default)
    {
        if (Descriptor.Type.IsArray())
        {
            return Descriptor.MaxEntries;
        }

        long n = 0;
        foreach (RawEntryBatch b in ReadEntries(8192, MapReadMode.Auto, cancellationToken))
        {
            n += b.Count;
        }

        return n;
    }

    private void CheckKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != Descriptor.KeySize)
        {
            throw new ArgumentException($"{Target} takes keys of {Descriptor.KeySize} bytes; {key.Length} were given.", nameof(key));
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            Libc.close(fd);
        }
    }

    public override string ToString() => $"{Descriptor.Name} ({Descriptor.Type}, key {Descriptor.KeySize}, value {Descriptor.ValueSize}, max {Descriptor.MaxEntries})";
}

[Flags]
public enum BpfUpdateFlags : ulong
{
    Any = 0,
    NoExist = 1,
    Exist = 2,
}

/// <summary>How <see cref="BpfMap.ReadEntries"/> walks a map.</summary>
public enum MapReadMode
{
    /// <summary>Batch lookups, falling back to key by key where the kernel refuses them.</summary>
    Auto,
    /// <summary>Batch lookups only; fail where the kernel refuses them.</summary>
    Batch,
    /// <summary>GET_NEXT_KEY and LOOKUP_ELEM, one key at a time.</summary>
    KeyByKey,
}

public sealed class ByteArrayComparer : IEqualityComparer<byte[]>
{
    public static readonly ByteArrayComparer Instance = new();

    public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);

    public int GetHashCode(byte[] obj)
    {
        var h = new HashCode();
        h.AddBytes(obj);
        return h.ToHashCode();
    }
}
