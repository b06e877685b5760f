using System.Collections.ObjectModel;

namespace CalicoBpf;

/// <summary>
/// A list one property holds (flag names, backends, rule matches, set fields): a list to the pipeline
/// and an array to ConvertTo-Json, and its items joined in one cell for Export-Csv, which writes a
/// property's ToString() (a .NET array gave "System.String[]", a List its type name).
/// </summary>
public sealed class ValueList<T> : ReadOnlyCollection<T>
{
    private readonly string _separator;
    private readonly Func<T, string>? _format;

    /// <param name="items">The items.</param>
    /// <param name="separator">What joins them in the cell.</param>
    /// <param name="format">How an item reads in the cell (default: its ToString()).</param>
    public ValueList(IEnumerable<T> items, string separator = ", ", Func<T, string>? format = null)
        : base(items.ToList())
    {
        _separator = separator;
        _format = format;
    }

    public static new ValueList<T> Empty { get; } = new(Array.Empty<T>());

    public static implicit operator ValueList<T>(T[] items) => new(items);

    public static implicit operator ValueList<T>(List<T> items) => new(items);

    public override string ToString() => string.Join(_separator, _format is null ? this.Select(i => i?.ToString()) : this.Select(_format));
}
