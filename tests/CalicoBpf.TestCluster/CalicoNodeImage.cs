using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace CalicoBpf.TestCluster;

/// <summary>
/// What the calico-node image of one Calico release holds, as far as an exec into it can tell: the
/// binaries its clean-up-filesystem.sh keeps and the bpftool it copies in. A node's container
/// (<see cref="SimulatedNode"/>) is this test machine's binaries that the release's keep-list would
/// keep, bound into an otherwise empty root, and nothing else. The calico binary (calico-node up to
/// v3.32, /usr/bin/calico from v3.33) is not there: the module never calls it, and a change that
/// starts to would find it missing here before a user finds the name wrong on a real node.
/// </summary>
/// <remarks>
/// Sources, read at each release tag of projectcalico/calico: node/clean-up-filesystem.sh (the
/// keep-list: grep patterns over the paths of /sbin, /usr/bin, /usr/sbin and /usr/local/bin),
/// node/Dockerfile.* (bpftool copied to /bin from calico/bpftool; /bin/calico-node, from v3.33
/// /usr/bin/calico), metadata.mk (BPFTOOL_IMAGE), and ../shared/reference/calico-node-image.md.
/// </remarks>
public sealed class CalicoNodeImage
{
    /// <summary>The keep-list of v3.30.0's clean-up-filesystem.sh, in its order (grep basic regular expressions).</summary>
    private static readonly string[] KeepV330 =
    {
        "calico", "bird", "versions",
        "runit", "runsv", "sv", "utmpset",
        "/arp$", "/conntrack$", "/ip$", "bpftool",
        "xtables", "iptables", "ip6tables", "ipset",
        "nftables", "nft",
        "kmod", "depmod", "insmod", "modinfo", "modprobe", "rmmod", "lsmod",
        @"\[", "alias", "basename", "coreutils", "/bash$", "/sh$", "/cat$", "/cd$", "/cp$", "/ln$", "/date$", "/ls$",
        "echo", "/env$", "false", "true", "getopt", "/hostname$", "/gzip$", "/grep$", "/nice$", "join", "/kill$",
        "mkdir", "mknod", "more", "less", "printf", "/read$", "readlink", "/rm$", "/sed$", "sleep", "sort", "/stat$",
        "tail", "/tc$", "touch", "/tee$", "timeout", "/test$", "ulimit", "uniq", "wait", "which", "whoami", "yes",
        "zcat", "zless", "zmore",
        "mountns",
        "/find$", "/ldd$", "/ldconfig$",
    };

    /// <summary>The directories the keep-list scans (/bin and /sbin are links into /usr on UBI, as on this machine).</summary>
    public static readonly string[] BinaryDirectories = { "/usr/sbin", "/usr/bin", "/usr/local/bin" };

    /// <summary>The PATH of an exec into calico-node: the image sets none, so the runtime's default.</summary>
    public const string ContainerPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    private CalicoNodeImage(CalicoRelease release, string bpftoolVersion, IReadOnlyList<string> keep)
    {
        Release = release;
        BpftoolVersion = bpftoolVersion;
        KeepPatterns = keep;
        _keep = keep.Select(p => new Regex(p, RegexOptions.CultureInvariant)).ToArray();
    }

    private readonly Regex[] _keep;

    public CalicoRelease Release { get; }

    /// <summary>bpftool of the image: 5.3.0, 7.4.0 or 7.5.0.</summary>
    public string BpftoolVersion { get; }

    public IReadOnlyList<string> KeepPatterns { get; }

    /// <summary>The image of a release.</summary>
    public static CalicoNodeImage For(CalicoRelease release)
    {
        var keep = new List<string>(KeepV330);
        if (!release.AtLeast(3, 29))
        {
            // nftables came into the keep-list with v3.29.
            keep.Remove("nftables");
            keep.Remove("nft");
        }

        if (release.AtLeast(3, 32))
        {
            keep[keep.IndexOf("wait")] = "/wait$";
        }

        string bpftool = release.AtLeast(3, 30) ? "7.5.0"
            : release.AtLeast(3, 29) ? "7.4.0"
            : release.AtLeast(3, 28, 1) ? "7.4.0"
            : release.AtLeast(3, 28) ? "5.3.0"
            : release.AtLeast(3, 27, 4) ? "7.4.0"
            : "5.3.0";
        return new CalicoNodeImage(release, bpftool, keep);
    }

    /// <summary>Whether the keep-list keeps a binary at this path (grep -e P1 -e P2 ..., as the script runs it).</summary>
    public bool Keeps(string path) => _keep.Any(r => r.IsMatch(path));

    /// <summary>
    /// The binaries of this machine the image would keep, as (path on this machine, path in the
    /// container). Two are not the machine's own: sh is bash, as on UBI (here it is dash), and
    /// bpftool is the release's (<see cref="Bpftool"/>).
    /// </summary>
    /// <param name="stagingDirectory">Where a stand-in script is written.</param>
    public IEnumerable<(string Source, string Target)> Binaries(string stagingDirectory)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string dir in BinaryDirectories.Where(Directory.Exists))
        {
            foreach (string path in Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal))
            {
                string name = Path.GetFileName(path);
                if (!Keeps(path) || name is "sh" or "bpftool" || !seen.Add(name) || !IsExecutable(path))
                {
                    continue;
                }

                yield return (path, path);
            }
        }

        yield return ("/usr/bin/bash", "/usr/bin/sh");
        yield return (Bpftool(stagingDirectory), "/usr/bin/bpftool");
        if (BpftoolVersion == "5.3.0")
        {
            yield return (RealBpftool, "/usr/libexec/bpftool-real");
        }
    }

    /// <summary>
    /// Where the release's bpftool comes from. 7.5.0 is the real one (Debian's bookworm-backports
    /// build, fetched by tests/tools/get-bpftool75.sh); it also serves 7.4.0, which has every
    /// subcommand and JSON field the module uses. 5.3.0 cannot be had here: a stand-in runs 7.5.0
    /// and refuses the link object, which bpftool gained with Linux 5.8, as bpftool refuses an
    /// object it does not know (its usage on stderr, exit 255). Without the fetched 7.5.0 this
    /// machine's bpftool stands in. The 5.3.0 stand-in's net listing also leaves out what 5.3 cannot
    /// see (TCX, netkit, netfilter).
    /// </summary>
    private string Bpftool(string stagingDirectory)
    {
        if (BpftoolVersion != "5.3.0")
        {
            return RealBpftool;
        }

        string path = Path.Combine(stagingDirectory, "bpftool-5.3.0");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(stagingDirectory);
            const string usage = "Usage: bpftool [OPTIONS] OBJECT { COMMAND | help }\\n       bpftool batch file FILE\\n       bpftool version\\n\\n" +
                "       OBJECT := { prog | map | cgroup | perf | net | feature | btf }\\n       OPTIONS := { {-j|--json} [{-p|--pretty}] | {-f|--bpffs} |\\n" +
                "                    {-m|--mapcompat} | {-n|--nomount} }\\n";
            var script = new StringBuilder()
                .Append("#!/usr/bin/sh\n")
                .Append("# bpftool 5.3.0 as the calico-node image of v3.25 to v3.28.0 ships it: 7.5.0 without the link object.\n")
                .Append("obj=; json=; for a in \"$@\"; do case \"$a\" in -j|--json|-p|--pretty) json=1;; -*) ;; *) obj=$a; break;; esac; done\n")
                // bpftool 5.3's version: the text line, or with -j its JSON (no "features" object: that came with 5.14).
                .Append($"case \"$obj\" in l|li|lin|link) printf '{usage}' >&2; exit 255;; h|he|hel|help|'') printf '{usage}' >&2; exit 0;; ")
                .Append("v|ve|ver|vers|versi|versio|version) if [ -n \"$json\" ]; then echo '{\"version\":\"5.3.0\"}'; else echo 'bpftool v5.3.0'; fi; exit 0;; esac\n")
                // Its net object knows XDP, tc filters and the flow dissector, nothing attached without netlink
                // (TCX and netkit came with 7.3, netfilter with 7.3 too): in its JSON those are not there.
                .Append("case \"$obj\" in n|ne|net) if [ -n \"$json\" ]; then set -o pipefail; /usr/libexec/bpftool-real \"$@\" | ")
                .Append("sed -E 's/\\{[^{}]*\"kind\":\"(tcx|netkit)\\/[^{}]*\\},?//g; s/,\\]/]/g; s/,\"netfilter\":\\[[^]]*\\]//g'; exit $?; fi;; esac\n")
                .Append("exec /usr/libexec/bpftool-real \"$@\"\n");
            string temp = path + ".tmp" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
            File.WriteAllText(temp, script.ToString());
            MakeExecutable(temp);
            File.Move(temp, path, overwrite: true);
        }

        return path;
    }

    /// <summary>The real bpftool behind the 5.3.0 stand-in, bound at /usr/libexec/bpftool-real (not on PATH).</summary>
    public string RealBpftool => FetchedBpftool ?? HostBpftool;

    /// <summary>Where tests/tools/get-bpftool75.sh puts bpftool 7.5.0 (CALICOBPF_BPFTOOL75 overrides).</summary>
    public static string? FetchedBpftool
    {
        get
        {
            string path = Environment.GetEnvironmentVariable("CALICOBPF_BPFTOOL75") is { Length: > 0 } p ? p : "/var/cache/calicobpf/bpftool-7.5/bpftool";
            return File.Exists(path) ? path : null;
        }
    }

    private static string HostBpftool =>
        new[] { "/usr/sbin/bpftool", "/usr/bin/bpftool", "/usr/local/sbin/bpftool" }.FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException("bpftool is not installed on this machine; the calico-node image needs one (apt-get install bpftool, or tests/tools/get-bpftool75.sh).");

    /// <summary>rwxr-xr-x, as a binary of the image is.</summary>
    internal static void MakeExecutable(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The test cluster's nodes are Linux namespaces.");
        }

        File.SetUnixFileMode(path, (UnixFileMode)0b111_101_101);
    }

    /// <summary>A regular file someone may execute.</summary>
    internal static bool IsExecutable(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("The test cluster's nodes are Linux namespaces.");
        }

        return File.Exists(path) && (File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0;
    }
}
