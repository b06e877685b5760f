using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>Lists the Calico maps pinned on a node with their sizes and fill level.</summary>
public static class MapInventory
{
    public static IEnumerable<MapInfo> List(INodeMaps node, Func<string, bool>? nameFilter = null, bool countEntries = true,
        IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        reporter ??= NullReporter.Instance;
        var open = new List<(CalicoMapName Pin, IMapReader Reader)>();
        try
        {
            var pins = new List<CalicoMapName>();
            foreach (CalicoMapName pin in node.ListMaps())
            {
                if (pin.IsOld)
                {
                    reporter.Verbose($"Skipping {pin.PinName}: a resize leftover that Felix removes once programs use the new map.");
                }
                else if (nameFilter is null || nameFilter(pin.PinName) || nameFilter(pin.BaseName))
                {
                    pins.Add(pin);
                }
            }

            NodeRelease release = ReleaseInference.Of(node);
            reporter.Verbose($"{node.Node}: Calico {release}.");
            node.PrepareToOpen(pins.Select(p => p.PinName).ToList());
            foreach (CalicoMapName pin in pins)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    open.Add((pin, node.OpenMap(pin.PinName)));
                }
                catch (BpfInvalidArgumentException ex) when (ex.Message.Contains("not a BPF map", StringComparison.Ordinal))
                {
                    reporter.Verbose(ex.Message);
                }
            }

            // Counted together: a remote node dumps them all in one round trip.
            IReadOnlyList<long?> counts = countEntries
                ? node.CountEntries(open.Select(o => o.Reader).ToList(), cancellationToken)
                : new long?[open.Count];
            for (int i = 0; i < open.Count; i++)
            {
                (CalicoMapName pin, IMapReader reader) = open[i];
                BpfMapDescriptor d = reader.Descriptor;
                long? entries = counts[i];
                yield return new MapInfo
                {
                    Node = node.Node,
                    Name = pin.PinName,
                    BaseName = pin.BaseName,
                    Version = pin.Version,
                    Family = pin.Family,
                    Type = d.Type,
                    KeySize = d.KeySize,
                    ValueSize = d.ValueSize,
                    MaxEntries = d.MaxEntries,
                    Entries = entries,
                    // An array has every slot from its creation: it is never "full", and its fill says nothing.
                    FillPercent = !d.Type.IsArray() && entries is { } n && d.MaxEntries > 0 ? Math.Round(100.0 * n / d.MaxEntries, 1) : null,
                    Id = d.Id,
                    Flags = d.Flags,
                    Path = System.IO.Path.Combine(node.PinDirectory, pin.PinName),
                    Description = MapCatalog.Describe(pin.BaseName),
                    CalicoRelease = release,
                };
            }
        }
        finally
        {
            foreach ((_, IMapReader reader) in open)
            {
                reader.Dispose();
            }
        }
    }
}
