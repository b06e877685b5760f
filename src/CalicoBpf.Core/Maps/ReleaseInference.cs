using CalicoBpf.Transport;

namespace CalicoBpf.Maps;

/// <summary>
/// Tells a node's Calico release from what it shows when nothing names it: each pinned map version
/// was written by a range of releases, and the node's release is in all of them. The newest release
/// of what remains is used, and the range is said. A new release that bumps a map version is one row
/// here (and one in that family's meaning table).
/// </summary>
public static class ReleaseInference
{
    /// <summary>
    /// Map versions and the releases that pinned them: from First up to, not including, Until (null:
    /// still current). Each family's own table is the source; only what is not in one is here.
    /// </summary>
    private static readonly (string BaseName, int Version, CalicoRelease First, CalicoRelease? Until)[] PinnedBy =
        ConntrackMeaning.Releases().Select(r => (MapCatalog.ConntrackV4, r.Version, r.First, r.Until))
            // IPv6 conntrack from v3.27 (version 3).
            .Concat(ConntrackMeaning.Releases().Where(r => r.Version >= 3).Select(r => (MapCatalog.ConntrackV6, r.Version, r.Version == 3 ? new CalicoRelease(3, 27, 0) : r.First, r.Until)))
            .Concat(CounterLayout.VersionReleases().Select(r => (MapCatalog.Counters, r.Version, r.First, r.Until)))
            // Maglev lookup tables from v3.32.0 (felix/bpf/nat at the tag).
            .Concat(new (string, int, CalicoRelease, CalicoRelease?)[] { ("cali_v4_mglv", 2, new CalicoRelease(3, 32, 0), null), ("cali_v6_mglv", 2, new CalicoRelease(3, 32, 0), null) })
            .ToArray();

    /// <summary>
    /// False when the table says the release never pinned this version of the map (a v3.30 node has no
    /// cali_v4_mglv2); true for maps the table does not cover. Simulated nodes pin only what their release does.
    /// </summary>
    public static bool IsPinnedBy(string baseName, int version, CalicoRelease release)
    {
        bool known = false;
        foreach ((string b, int v, CalicoRelease first, CalicoRelease? until) in PinnedBy)
        {
            if (b != baseName)
            {
                continue;
            }

            known = true;
            if (v == version && release.AtLeast(first) && (until is null || !release.AtLeast(until)))
            {
                return true;
            }
        }

        return !known;
    }

    /// <summary>
    /// <see cref="Infer"/> on the node's pins; when they cannot be listed (no bpffs, not root: a reader
    /// that needs them says so itself), the newest rules, with why.
    /// </summary>
    public static NodeRelease InferOrUnknown(Func<IEnumerable<CalicoMapName>> listPins)
    {
        try
        {
            return Infer(listPins());
        }
        catch (Interop.BpfException ex)
        {
            return new NodeRelease(CalicoRelease.Newest, CalicoReleaseSource.Unknown,
                $"not told: the pinned maps could not be listed ({ex.Message}); the newest rules CalicoBpf knows are used; give -CalicoVersion")
            {
                ListingNeedsRoot = ex is Interop.BpfEnvironmentException { Problem: Interop.BpfEnvironmentProblem.NotRoot },
            };
        }
    }

    /// <summary>The release the pins allow; <see cref="CalicoReleaseSource.Unknown"/> (newest rules) when no pin says anything.</summary>
    public static NodeRelease Infer(IEnumerable<CalicoMapName> pins)
    {
        CalicoRelease first = CalicoRelease.Oldest;
        CalicoRelease? until = null;
        var evidence = new List<string>();
        foreach (CalicoMapName pin in pins)
        {
            if (pin.IsOld)
            {
                continue;
            }

            foreach ((string baseName, int version, CalicoRelease from, CalicoRelease? to) in PinnedBy)
            {
                if (baseName == pin.BaseName && version == pin.Version)
                {
                    evidence.Add(pin.PinName);
                    first = from.AtLeast(first) ? from : first;
                    until = to is null ? until : until is null || !to.AtLeast(until) ? to : until;
                }
            }
        }

        if (evidence.Count == 0)
        {
            return new NodeRelease(CalicoRelease.Newest, CalicoReleaseSource.Unknown,
                $"not told: no pinned map names a release; the newest rules CalicoBpf knows ({CalicoRelease.Newest}) are used; give -CalicoVersion");
        }

        string pinsText = string.Join(", ", evidence.Distinct(StringComparer.Ordinal));
        if (until is not null && first.AtLeast(until))
        {
            return new NodeRelease(CalicoRelease.Newest, CalicoReleaseSource.Unknown,
                $"not told: the pinned maps ({pinsText}) fit no single release; the newest rules CalicoBpf knows are used; give -CalicoVersion");
        }

        CalicoRelease newest = until is null ? CalicoRelease.Newest : new CalicoRelease(until.Major, until.Minor - 1, 0);
        string range = until is null ? $"{first.Line} or later" : $"{first.Line} to {newest.Line}";
        return new NodeRelease(newest, CalicoReleaseSource.PinnedMaps,
            $"inferred from the pinned maps ({pinsText}): {range}; decoded with the rules of {newest.Line}; give -CalicoVersion to be exact")
        {
            Earliest = first,
        };
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<INodeMaps, object> Warned = new();
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<INodeMaps, NodeRelease> Inferred = new();

    /// <summary>
    /// The node's Calico release, which decides what its maps' bytes mean: given (-CalicoVersion, the
    /// calico-node image), else inferred from its pinned map versions once per node object.
    /// </summary>
    public static NodeRelease Of(INodeMaps node) =>
        node.GivenRelease ?? Inferred.GetValue(node, n => InferOrUnknown(() => n.ListMaps()));

    /// <summary>
    /// The node's release for a reader, saying once per node (per cmdlet run: a node object lives as
    /// long as one) when nothing could tell it, so the user knows which rules decoded the maps.
    /// </summary>
    public static NodeRelease Of(INodeMaps node, IEngineReporter reporter)
    {
        NodeRelease release = Of(node);
        if (release.Source == CalicoReleaseSource.Unknown && !release.ListingNeedsRoot && Warned.TryAdd(node, Warned))
        {
            reporter.Warning($"{node.Node}: the Calico release could not be told ({release.Detail}). Maps are decoded with the rules of {release.Release.Line}.");
        }

        return release;
    }
}
