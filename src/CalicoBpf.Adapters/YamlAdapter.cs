using System.Globalization;
using System.Text.Json;
using CalicoBpf.Isolation;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Core;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace CalicoBpf.Adapters;

/// <summary>YAML with camelCase keys (as Kubernetes and Calico write it) into Core's types.</summary>
public sealed class YamlAdapter : IYamlAdapter
{
    private readonly IDeserializer _deserializer = new DeserializerBuilder()
        .WithNamingConvention(CamelCaseNamingConvention.Instance)
        .Build();

    public T Deserialize<T>(string yaml)
        where T : class, new()
    {
        try
        {
            RequireMapping(yaml);
            return _deserializer.Deserialize<T>(yaml) ?? new T();
        }
        catch (Exception ex) when (AsFormat(ex) is { } format)
        {
            throw format;
        }
    }

    /// <summary>
    /// YamlDotNet's ways of refusing a document, as the FormatException callers know (they know
    /// nothing of YamlDotNet): a YamlException with line, column and cause; an ArgumentException (some
    /// malformed tags); an InvalidOperationException from its parser (a stream that ends a document
    /// and goes on with a NUL: a fuzzer found it). Anything else is not a bad document.
    /// </summary>
    private static FormatException? AsFormat(Exception ex) => ex switch
    {
        YamlException y => new FormatException($"Line {y.Start.Line}, column {y.Start.Column}: {y.InnerException?.Message ?? y.Message}", y),
        ArgumentException => new FormatException($"The YAML is not valid: {ex.Message}", ex),
        InvalidOperationException when ex.TargetSite?.DeclaringType?.Namespace?.StartsWith("YamlDotNet", StringComparison.Ordinal) == true =>
            new FormatException($"The YAML is not valid: {ex.Message}", ex),
        _ => null,
    };

    /// <summary>
    /// A document of Core's types is a mapping (or empty). Anything else is refused here: YamlDotNet
    /// would turn a scalar into the type through its static Parse(string), which parses the same text
    /// again, without end (a stack overflow the fuzzer found).
    /// </summary>
    private static void RequireMapping(string yaml)
    {
        var parser = new Parser(new StringReader(yaml));
        parser.Consume<YamlDotNet.Core.Events.StreamStart>();
        if (parser.Accept<YamlDotNet.Core.Events.StreamEnd>(out _))
        {
            return;
        }

        parser.Consume<YamlDotNet.Core.Events.DocumentStart>();
        if (!parser.Accept<YamlDotNet.Core.Events.MappingStart>(out _) && !parser.Accept<YamlDotNet.Core.Events.DocumentEnd>(out _))
        {
            Mark start = parser.Current?.Start ?? Mark.Empty;
            throw new YamlException(start, start, "the document is not a mapping of key: value lines");
        }
    }

    public IReadOnlyList<string> ToJsonDocuments(string yaml)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (Exception ex) when (AsFormat(ex) is { } format)
        {
            throw format;
        }

        var documents = new List<string>();
        foreach (YamlDocument document in stream.Documents)
        {
            var buffer = new System.IO.MemoryStream();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                WriteJson(writer, document.RootNode);
            }

            documents.Add(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
        }

        return documents;
    }

    /// <summary>How deep a document may nest, and how many nodes it may expand to (aliases repeat nodes): beyond, it is refused, not followed.</summary>
    private const int MaxDepth = 100;
    private const int MaxNodes = 1_000_000;

    private static void WriteJson(Utf8JsonWriter writer, YamlNode node) => WriteJson(writer, node, 0, new int[1]);

    private static void WriteJson(Utf8JsonWriter writer, YamlNode node, int depth, int[] written)
    {
        if (depth > MaxDepth || ++written[0] > MaxNodes)
        {
            throw Refused(node, depth > MaxDepth ? $"the document nests deeper than {MaxDepth} levels" : "the document expands to more than 1,000,000 nodes (aliases repeat what they name)");
        }

        switch (node)
        {
            case YamlMappingNode map:
                writer.WriteStartObject();
                foreach (KeyValuePair<YamlNode, YamlNode> pair in map.Children)
                {
                    // JSON keys are text: a key that is a mapping or a list ({ { a } }, [a]: b) has no JSON form.
                    string key = pair.Key is YamlScalarNode k ? k.Value ?? string.Empty : throw Refused(pair.Key, "a key is a mapping or a list, not text");
                    writer.WritePropertyName(key);
                    WriteJson(writer, pair.Value, depth + 1, written);
                }

                writer.WriteEndObject();
                break;
            case YamlSequenceNode sequence:
                writer.WriteStartArray();
                foreach (YamlNode item in sequence.Children)
                {
                    WriteJson(writer, item, depth + 1, written);
                }

                writer.WriteEndArray();
                break;
            case YamlScalarNode scalar:
                WriteScalar(writer, scalar);
                break;
            default:
                writer.WriteNullValue();
                break;
        }
    }

    private static FormatException Refused(YamlNode node, string why) => new($"Line {node.Start.Line}, column {node.Start.Column}: {why}.");

    private static void WriteScalar(Utf8JsonWriter writer, YamlScalarNode scalar)
    {
        string text = scalar.Value ?? string.Empty;
        if (scalar.Style != ScalarStyle.Plain)
        {
            writer.WriteStringValue(text);
            return;
        }

        switch (text)
        {
            case "" or "~" or "null" or "Null" or "NULL":
                writer.WriteNullValue();
                return;
            case "true" or "True" or "TRUE":
                writer.WriteBooleanValue(true);
                return;
            case "false" or "False" or "FALSE":
                writer.WriteBooleanValue(false);
                return;
        }

        if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long integer))
        {
            writer.WriteNumberValue(integer);
        }
        else if (System.Text.RegularExpressions.Regex.IsMatch(text, @"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
                 && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double real))
        {
            writer.WriteNumberValue(real);
        }
        else
        {
            writer.WriteStringValue(text);
        }
    }

    public string Version => typeof(IDeserializer).Assembly.GetName().Version?.ToString() ?? "unknown";
}
