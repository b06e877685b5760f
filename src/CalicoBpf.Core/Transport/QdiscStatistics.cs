using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>A node's qdisc counters as the objects users see: one rule for every transport.</summary>
internal static class QdiscStatistics
{
    public static IReadOnlyList<QdiscStatistic> From(string node, IReadOnlyDictionary<int, NetworkLink> links, IEnumerable<QdiscCounters> qdiscs) =>
        qdiscs.Select(q => new QdiscStatistic
        {
            Node = node,
            IfIndex = q.IfIndex,
            Interface = q.Device ?? (links.TryGetValue(q.IfIndex, out NetworkLink? l) ? l.Name : "ifindex " + q.IfIndex),
            Kind = q.Kind,
            Handle = TrafficControl.FormatHandle(q.Handle),
            Parent = q.Parent == TrafficControl.RootHandle ? "root" : TrafficControl.FormatHandle(q.Parent, full: true),
            Bytes = q.Bytes,
            Packets = q.Packets,
            Drops = q.Drops,
            Overlimits = q.Overlimits,
            Requeues = q.Requeues,
            Backlog = q.Backlog,
            QueueLength = q.QueueLength,
        }).ToList();
}
