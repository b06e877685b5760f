using System.Text.Json.Serialization;
using CalicoBpf.Interop;
using CalicoBpf.Transport;

namespace CalicoBpf.Bundles;

/// <summary>
/// The layout of a diagnostics bundle (a zip): one manifest, the cluster's facts, and per node the
/// facts its dataplane gave, the raw entries of its maps and the typed objects read from them.
/// Large entries are gzip files stored as they are (the zip does not compress them again), so a
/// bundle is written and read as streams; docs/bundles.md describes every entry.
/// </summary>
public static class BundleFormat
{
    /// <summary>The format this module writes and reads; a later format is refused with its name.</summary>
    public const string Format = "calicobpf-bundle/1";

    public const string Manifest = "manifest.json";

    public const string ClusterFacts = "cluster/facts.json.gz";

    public const string CheckResults = "checks.json";

    public static string NodeDirectory(string node) => "nodes/" + SafeName(node) + "/";

    public static string NodeFacts(string node) => NodeDirectory(node) + "facts.json.gz";

    /// <summary>Where the entries of a map read into <paramref name="facts"/> are (its <see cref="NodeFacts.Directory"/>).</summary>
    public static string MapEntries(NodeFacts facts, string pin) => FilesOf(facts) + "maps/" + SafeName(pin) + ".bin.gz";

    /// <summary>Where the files of a node's facts are: nodes/NODE/, or the directory of the window's start (<see cref="WindowStartDirectory"/>).</summary>
    public static string FilesOf(NodeFacts facts) => facts.Directory ?? NodeDirectory(facts.Node);

    /// <summary>The files of a node's reads at the start of the bundle's window.</summary>
    public static string WindowStartDirectory(string node) => NodeDirectory(node) + "window-start/";

    public static string Objects(string node, string family) => NodeDirectory(node) + "objects/" + family + ".json.gz";

    public static string Log(string node) => NodeDirectory(node) + "calico-node.log.gz";

    public static string Trace(NodeFacts facts) => FilesOf(facts) + "trace.txt.gz";

    /// <summary>A node or pin name as one path segment of the zip (names are DNS labels and pin names; anything else becomes _).</summary>
    public static string SafeName(string name)
    {
        var b = new StringBuilder(name.Length);
        foreach (char c in name)
        {
            b.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_');
        }

        return b.Length == 0 || b.ToString() is "." or ".." ? "_" + b : b.ToString();
    }

    /// <summary>How a bundle's JSON is written and read: enums by name, no indentation, nulls left out.</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        Converters = { new JsonStringEnumConverter(), new AddressConverter(), new ValueMapConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>The manifest is read by people too: indented.</summary>
    public static readonly JsonSerializerOptions IndentedJson = new(Json) { WriteIndented = true };

    private sealed class ValueMapConverter : JsonConverter<ValueMap>
    {
        public override ValueMap Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            new(JsonSerializer.Deserialize<Dictionary<string, string>>(ref reader, options) ?? new Dictionary<string, string>());

        public override void Write(Utf8JsonWriter writer, ValueMap value, JsonSerializerOptions options) =>
            JsonSerializer.Serialize(writer, (IReadOnlyDictionary<string, string>)value, options);
    }

    private sealed class AddressConverter : JsonConverter<IPAddress>
    {
        public override IPAddress? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.GetString() is { } s ? IPAddress.Parse(s) : null;

        public override void Write(Utf8JsonWriter writer, IPAddress value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
    }
}

/// <summary>manifest.json: what the bundle holds, who made it, when, and what could not be captured.</summary>
public sealed class BundleManifest
{
    public string Format { get; set; } = BundleFormat.Format;

    public string ModuleVersion { get; set; } = string.Empty;

    /// <summary>Cluster (made with -Node, through the Kubernetes API) or Local (one machine, no cluster facts).</summary>
    public string Kind { get; set; } = "Cluster";

    /// <summary>The kubeconfig context the bundle was made through; empty for a local bundle.</summary>
    public string Context { get; set; } = string.Empty;

    public DateTime Started { get; set; }

    public DateTime Finished { get; set; }

    /// <summary>The bound the bundle's files kept to, in bytes (compressed, as stored).</summary>
    public long MaxSize { get; set; }

    /// <summary>Lines of each calico-node log kept.</summary>
    public int LogLines { get; set; }

    /// <summary>Lines of each node's trace buffer kept.</summary>
    public int TraceLines { get; set; }

    public List<BundleNodeEntry> Nodes { get; set; } = new();

    /// <summary>What could not be captured beyond single nodes (the cluster's facts, the checks), with why.</summary>
    public List<string> Problems { get; set; } = new();
}

/// <summary>One node in the manifest.</summary>
public sealed class BundleNodeEntry
{
    public string Node { get; set; } = string.Empty;

    /// <summary>Complete, Partial (some families failed or were omitted), or Failed (nothing read).</summary>
    public string Status { get; set; } = "Complete";

    public string Error { get; set; } = string.Empty;

    public DateTime Started { get; set; }

    public DateTime Finished { get; set; }

    /// <summary>The node's Calico release, as its decoders took it (the image, or its pins).</summary>
    public string Release { get; set; } = string.Empty;

    /// <summary>Bytes of this node's entries as stored.</summary>
    public long Bytes { get; set; }

    /// <summary>The object families read, with their counts or why they could not be read.</summary>
    public List<BundleFamilyEntry> Families { get; set; } = new();

    /// <summary>Maps whose entries are not in the bundle, with why (the size bound).</summary>
    public List<string> Omitted { get; set; } = new();

    /// <summary>The node as the cluster listed it (local bundles: this machine as far as it knows itself).</summary>
    public CalicoNode? Identity { get; set; }

    /// <summary>The window the node's counters were watched over (Get-BpfDrop -Bundle reads its drops); null: none was recorded, and why in <see cref="WindowProblem"/>.</summary>
    public BundleWindowEntry? Window { get; set; }

    public string WindowProblem { get; set; } = string.Empty;
}

/// <summary>When a node's window began and ended (UTC): its first reads, and the capture's.</summary>
public sealed class BundleWindowEntry
{
    public DateTime Start { get; set; }

    public DateTime End { get; set; }
}

/// <summary>One family of objects a node's export read.</summary>
public sealed class BundleFamilyEntry
{
    public string Family { get; set; } = string.Empty;

    public long Objects { get; set; }

    /// <summary>Empty when read; else why not (the node's own error, as live).</summary>
    public string Problem { get; set; } = string.Empty;

    /// <summary>Whether the objects are in nodes/NODE/objects/FAMILY.json.gz.</summary>
    public bool Json { get; set; }

    /// <summary>Why the typed JSON was left out (the size bound); the facts are there, and -Bundle reads them.</summary>
    public string? JsonOmitted { get; set; }
}

/// <summary>A failure a node or the cluster answered with, kept so that offline the same question fails the same way.</summary>
public sealed class RecordedFailure
{
    public string Kind { get; set; } = string.Empty;

    public string Message { get; set; } = string.Empty;

    public int Errno { get; set; }

    public string? Target { get; set; }

    public BpfEnvironmentProblem? Problem { get; set; }

    public int? StatusCode { get; set; }

    public bool TimedOut { get; set; }

    public string? Node { get; set; }

    public int ExitCode { get; set; }

    public string? StandardError { get; set; }

    public static RecordedFailure Of(Exception ex) => new()
    {
        Kind = ex switch
        {
            BpfEnvironmentException => "Environment",
            BpfObjectNotFoundException => "NotFound",
            BpfPermissionDeniedException => "PermissionDenied",
            BpfNotSupportedException => "NotSupported",
            BpfInvalidArgumentException => "InvalidArgument",
            BpfException => "Bpf",
            Cluster.ClusterException => "Cluster",
            NodeCommandException => "NodeCommand",
            DirectoryNotFoundException => "DirectoryNotFound",
            FileNotFoundException => "FileNotFound",
            UnauthorizedAccessException => "Unauthorized",
            IOException => "IO",
            _ => "Other",
        },
        Message = ex.Message,
        Errno = ex is BpfException b ? b.Errno : 0,
        Target = ex is BpfException t ? t.Target : null,
        Problem = ex is BpfEnvironmentException e ? e.Problem : null,
        StatusCode = ex is Cluster.ClusterException c ? c.StatusCode : null,
        TimedOut = ex is Cluster.ClusterException { TimedOut: true },
        Node = ex is NodeCommandException n ? n.Node : null,
        ExitCode = ex is NodeCommandException x ? x.ExitCode : 0,
        StandardError = ex is NodeCommandException r ? r.StandardError : null,
    };

    /// <summary>The exception the node or cluster threw, as the same type where it is one the cmdlets tell apart.</summary>
    public Exception ToException() => Kind switch
    {
        "Environment" => new BpfEnvironmentException(Message, Problem ?? BpfEnvironmentProblem.NoCalicoMaps, Target),
        "NotFound" => new BpfObjectNotFoundException(Message, Errno, Target),
        "PermissionDenied" => new BpfPermissionDeniedException(Message, Errno, Target),
        "NotSupported" => new BpfNotSupportedException(Message, Errno, Target),
        "InvalidArgument" => new BpfInvalidArgumentException(Message, Errno, Target),
        "Bpf" => new BpfException(Message, Errno, Target),
        "Cluster" => new Cluster.ClusterException(Message, StatusCode) { TimedOut = TimedOut },
        "NodeCommand" => new NodeCommandException(Node ?? string.Empty, Message, ExitCode, StandardError ?? string.Empty),
        "DirectoryNotFound" => new DirectoryNotFoundException(Message),
        "FileNotFound" => new FileNotFoundException(Message),
        "Unauthorized" => new UnauthorizedAccessException(Message),
        "IO" => new IOException(Message),
        _ => new BundleException(Message),
    };
}

/// <summary>A bundle that cannot be read, or a question it holds no answer to.</summary>
public sealed class BundleException : Exception
{
    public BundleException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
