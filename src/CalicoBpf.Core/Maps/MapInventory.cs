using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>Lists the Calico maps pinned on a node with their sizes and fill level.</summary>
public static class MapInventory
{
    public static IEnumerable<BpfMapInfo> List(INodeDataplane node, Func<string, bool>? nameFilter = null, bool countEntries = true,
        IEngineReporter? reporter = null, CancellationToken cancellationToken = default)
    {
        reporter ??= NullReporter.Instance;
        foreach (CalicoMapName pin in node.ListMaps())
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (pin.IsOld)
            {
                reporter.Verbose($"Skipping {pin.PinName}: a resize leftover that Felix removes once programs use the new map.");
                continue;
            }

            if (nameFilter is not null && !nameFilter(pin.PinName) && !nameFilter(pin.BaseName))
            {
                continue;
            }

            BpfMapInfo info;
            try
            {
                using IMapReader reader = node.OpenMap(pin.PinName);
                BpfMapDescriptor d = reader.Descriptor;
                long? entries = countEntries ? reader.CountEntries(cancellationToken) : null;
                info = new BpfMapInfo
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
                    FillPercent = entries is { } n && d.MaxEntries > 0 ? Math.Round(100.0 * n / d.MaxEntries, 1) : null,
                    Id = d.Id,
                    Flags = d.Flags,
                    Path = System.IO.Path.Combine(node.PinDirectory, pin.PinName),
                    Description = MapCatalog.Describe(pin.BaseName),
                };
            }
            catch (BpfInvalidArgumentException ex) when (ex.Message.Contains("not a BPF map", StringComparison.Ordinal))
            {
                reporter.Verbose(ex.Message);
                continue;
            }

            yield return info;
        }
    }
}
