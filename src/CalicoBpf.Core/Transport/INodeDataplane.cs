using CalicoBpf.Interop;

namespace CalicoBpf.Transport;

/// <summary>
/// Where a node's dataplane bytes come from: the local kernel (<see cref="LocalDataplane"/>), or a
/// node reached through Kubernetes (<see cref="CommandDataplane"/>). Every implementation hands the
/// same raw bytes to the same decoders. Its members come in roles, one interface each, so that a
/// reader names the role it needs and a new role is one interface and one part of each transport:
/// <see cref="INodeMaps"/> (pinned maps), <see cref="INodeHost"/> (clock, links, qdiscs,
/// attachments, files), <see cref="INodeTrace"/> (the trace buffer) and <see cref="INodeCgroupPrograms"/>
/// (cgroup programs: the connect-time load balancer's).
/// </summary>
public interface INodeDataplane : INodeMaps, INodeHost, INodeTrace, INodeCgroupPrograms
{
}

/// <summary>What every role of a node's dataplane shares: the node.</summary>
public interface INodeSource
{
    /// <summary>The node name stamped on every object read from it.</summary>
    string Node { get; }
}
