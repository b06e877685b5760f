namespace CalicoBpf.Transport;

/// <summary>
/// A node's cgroup programs (those of Calico's connect-time load balancer), the links that hold them
/// and the program arrays that feed them: raw facts and the two changes; what is Calico's, and
/// which cgroup is the default, <c>Maps.ConnectTime</c> decides for every transport.
/// </summary>
public interface INodeCgroupPrograms : INodeSource
{
    /// <summary>
    /// The programs attached to the cgroup v2 directory <paramref name="cgroupPath"/>, with the links
    /// pinned in <paramref name="linkDirectory"/>. Throws <see cref="DirectoryNotFoundException"/> when
    /// the cgroup does not exist.
    /// </summary>
    CgroupProgramListing ListCgroupPrograms(string cgroupPath, string linkDirectory);

    /// <summary>Empties (index 0) and unpins one of the cali_ctlb_* program arrays.</summary>
    void RemoveConnectTimeProgramArray(string path);

    /// <summary>Detaches a link pin from its cgroup (when it is a link) and removes the pin.</summary>
    void RemoveConnectTimeLink(string path);
}
