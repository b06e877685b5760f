using System.Text;
using System.Text.Json.Nodes;

namespace CalicoBpf.TestCluster;

/// <summary>
/// The protobuf encoding of built-in kinds (application/vnd.kubernetes.protobuf), as far as clients
/// send it to this server: kubectl's typed clients (kubectl auth can-i) post SelfSubjectAccessReviews
/// and SelfSubjectRulesReviews (--list) that way. The envelope is "k8s\0" and a runtime.Unknown (typeMeta 1, raw 2, contentEncoding 3,
/// contentType 4); the field numbers are those of k8s.io/api's generated.proto. A kind this server
/// does not decode is a 415, as a real API server answers for custom resources.
/// </summary>
public static class KubeProtobuf
{
    public const string MediaType = "application/vnd.kubernetes.protobuf";

    private static readonly byte[] Magic = { (byte)'k', (byte)'8', (byte)'s', 0 };

    public static JsonObject Decode(ReadOnlySpan<byte> body)
    {
        if (!body.StartsWith(Magic))
        {
            throw new FormatException("the body does not start with the protobuf envelope's magic k8s\\0");
        }

        string apiVersion = string.Empty, kind = string.Empty;
        byte[] raw = Array.Empty<byte>();
        foreach ((int field, ReadOnlyMemory<byte> value) in Fields(body[Magic.Length..].ToArray()))
        {
            if (field == 1)
            {
                foreach ((int f, ReadOnlyMemory<byte> v) in Fields(value))
                {
                    if (f == 1)
                    {
                        apiVersion = Text(v);
                    }
                    else if (f == 2)
                    {
                        kind = Text(v);
                    }
                }
            }
            else if (field == 2)
            {
                raw = value.ToArray();
            }
        }

        return (apiVersion, kind) switch
        {
            ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => AccessReview(apiVersion, kind, raw),
            ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => RulesReview(apiVersion, kind, raw),
            _ => throw new NotSupportedException($"{kind} ({apiVersion})"),
        };
    }

    /// <summary>SelfSubjectAccessReview: spec (2) with resourceAttributes (1) or nonResourceAttributes (2).</summary>
    private static JsonObject AccessReview(string apiVersion, string kind, ReadOnlyMemory<byte> raw)
    {
        var spec = new JsonObject();
        foreach ((int field, ReadOnlyMemory<byte> value) in Fields(raw))
        {
            if (field != 2)
            {
                continue;
            }

            foreach ((int f, ReadOnlyMemory<byte> v) in Fields(value))
            {
                if (f == 1)
                {
                    spec["resourceAttributes"] = Strings(v, "namespace", "verb", "group", "version", "resource", "subresource", "name");
                }
                else if (f == 2)
                {
                    spec["nonResourceAttributes"] = Strings(v, "path", "verb");
                }
            }
        }

        return new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind, ["spec"] = spec };
    }

    /// <summary>SelfSubjectRulesReview: spec (2) with the namespace (1).</summary>
    private static JsonObject RulesReview(string apiVersion, string kind, ReadOnlyMemory<byte> raw)
    {
        var spec = new JsonObject();
        foreach ((int field, ReadOnlyMemory<byte> value) in Fields(raw))
        {
            if (field == 2)
            {
                spec = Strings(value, "namespace");
            }
        }

        return new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind, ["spec"] = spec };
    }

    /// <summary>The string fields 1..n of a message, by name; empty ones left out, as JSON omits them.</summary>
    private static JsonObject Strings(ReadOnlyMemory<byte> message, params string[] names)
    {
        var o = new JsonObject();
        foreach ((int f, ReadOnlyMemory<byte> v) in Fields(message))
        {
            if (f >= 1 && f <= names.Length && v.Length > 0)
            {
                o[names[f - 1]] = Text(v);
            }
        }

        return o;
    }

    private static string Text(ReadOnlyMemory<byte> v) => Encoding.UTF8.GetString(v.Span);

    /// <summary>The length-delimited fields of a message (field number, bytes); varints and fixed fields are skipped.</summary>
    private static List<(int Field, ReadOnlyMemory<byte> Value)> Fields(ReadOnlyMemory<byte> message)
    {
        var fields = new List<(int, ReadOnlyMemory<byte>)>();
        ReadOnlySpan<byte> s = message.Span;
        int at = 0;
        while (at < s.Length)
        {
            ulong tag = Varint(s, ref at);
            int field = (int)(tag >> 3);
            switch ((int)(tag & 7))
            {
                case 0:
                    Varint(s, ref at);
                    break;
                case 1:
                    at += 8;
                    break;
                case 5:
                    at += 4;
                    break;
                case 2:
                    ulong length = Varint(s, ref at);
                    if (length > (ulong)(s.Length - at))
                    {
                        throw new FormatException($"field {field} claims {length} bytes, more than the message has left");
                    }

                    fields.Add((field, message.Slice(at, (int)length)));
                    at += (int)length;
                    break;
                default:
                    throw new FormatException($"field {field} has wire type {tag & 7}, which Kubernetes' messages do not use");
            }
        }

        if (at > s.Length)
        {
            throw new FormatException("the message ends inside a field");
        }

        return fields;
    }

    private static ulong Varint(ReadOnlySpan<byte> s, ref int at)
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (at >= s.Length)
            {
                throw new FormatException("the message ends inside a varint");
            }

            byte b = s[at++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }

        throw new FormatException("a varint is longer than 10 bytes");
    }
}
