using System.Globalization;
using Newtonsoft.Json;

namespace CalicoBpf.Formats;

/// <summary>
/// ConvertTo-Json writes the module's enums by name ("Tcp", "NatForward", "Syn, Ack"), without
/// -EnumsAsStrings and also after Select-Object. ConvertTo-Json (Newtonsoft.Json, which PowerShell
/// ships) builds its serializer from JsonConvert.DefaultSettings; while the module is imported that
/// includes this converter, which takes only the enums of CalicoBpf.Core, so no other module's JSON
/// changes. A number with no name (protocol 200) stays a number. Removing the module puts the
/// previous settings back.
/// </summary>
public sealed class JsonEnumNames : JsonConverter
{
    private static readonly object Gate = new();
    private static Func<JsonSerializerSettings>? _previous;
    private static Func<JsonSerializerSettings>? _installed;

    private JsonEnumNames()
    {
    }

    public static JsonEnumNames Instance { get; } = new();

    public override bool CanRead => false;

    public override bool CanConvert(Type objectType) => objectType.IsEnum && objectType.Assembly == typeof(ConntrackEntry).Assembly;

    public override void WriteJson(JsonWriter writer, object? value, JsonSerializer serializer)
    {
        string text = value?.ToString() ?? string.Empty;
        if (text.Length == 0 || char.IsAsciiDigit(text[0]) || text[0] == '-')
        {
            writer.WriteValue(Convert.ToInt64(value, CultureInfo.InvariantCulture));
        }
        else
        {
            writer.WriteValue(text);
        }
    }

    public override object? ReadJson(JsonReader reader, Type objectType, object? existingValue, JsonSerializer serializer) =>
        throw new NotSupportedException("CalicoBpf's enums are written by name, not read.");

    internal static void Install()
    {
        lock (Gate)
        {
            if (_installed is not null && JsonConvert.DefaultSettings == _installed)
            {
                return;
            }

            Func<JsonSerializerSettings>? previous = JsonConvert.DefaultSettings;
            _previous = previous;
            _installed = () =>
            {
                JsonSerializerSettings settings = previous?.Invoke() ?? new JsonSerializerSettings();
                if (!settings.Converters.Contains(Instance))
                {
                    settings.Converters.Add(Instance);
                }

                return settings;
            };
            JsonConvert.DefaultSettings = _installed;
        }
    }

    internal static void Remove()
    {
        lock (Gate)
        {
            if (_installed is not null && JsonConvert.DefaultSettings == _installed)
            {
                JsonConvert.DefaultSettings = _previous;
            }

            _installed = null;
            _previous = null;
        }
    }
}
