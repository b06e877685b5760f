using System.Collections.ObjectModel;

namespace CalicoBpf;

/// <summary>Raw bytes of a map entry: a list of bytes to the pipeline and JSON, hex ("0a 41 00 02") in one CSV cell.</summary>
public sealed class HexBytes : ReadOnlyCollection<byte>
{
    public HexBytes(byte[] bytes)
        : base(bytes)
    {
    }

    public static new HexBytes Empty { get; } = new(Array.Empty<byte>());

    public static implicit operator HexBytes(byte[] bytes) => new(bytes);

    /// <summary>The bytes themselves (never changed: the collection is read-only to everyone else), for the kernel calls of Core.</summary>
    internal byte[] Bytes => (byte[])Items;

    /// <summary>A copy of the bytes.</summary>
    public byte[] ToArray() => (byte[])Bytes.Clone();

    public override string ToString() => string.Join(" ", Bytes.Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
}
