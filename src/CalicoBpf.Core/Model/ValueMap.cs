using System.Collections.ObjectModel;

namespace CalicoBpf;

/// <summary>Text keys and values (labels, bpfLogFilters, bpfConntrackTimeouts): a dictionary, written "key=value, ..." in one CSV cell.</summary>
public sealed class ValueMap : ReadOnlyDictionary<string, string>
{
    public ValueMap(IDictionary<string, string> items)
        : base(items)
    {
    }

    public static new ValueMap Empty { get; } = new(new Dictionary<string, string>());

    public override string ToString() => string.Join(", ", this.Select(p => p.Key + "=" + p.Value));
}
