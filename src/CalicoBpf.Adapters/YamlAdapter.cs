using CalicoBpf.Isolation;
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
            return _deserializer.Deserialize<T>(yaml) ?? new T();
        }
        catch (YamlException ex)
        {
            // Callers know nothing of YamlDotNet: report line, column and cause in a Core-known type.
            throw new FormatException(
                $"Line {ex.Start.Line}, column {ex.Start.Column}: {ex.InnerException?.Message ?? ex.Message}", ex);
        }
    }

    public string Version => typeof(IDeserializer).Assembly.GetName().Version?.ToString() ?? "unknown";
}
