namespace CalicoBpf.Flow;

/// <summary>A value of protobuf text format: a scalar token (a quoted string, a number, an enum name) or a message.</summary>
public sealed class TextValue
{
    private readonly string? _scalar;
    private readonly bool _quoted;
    private readonly Dictionary<string, TextValue>? _message;

    internal TextValue(string scalar, bool quoted)
    {
        _scalar = scalar;
        _quoted = quoted;
    }

    internal TextValue(Dictionary<string, TextValue> message) => _message = message;

    public string String(string field) => _scalar is not null && _quoted ? _scalar : throw new FormatException($"{field}: expected a quoted string");

    public int Int(string field) => _scalar is not null && !_quoted && long.TryParse(_scalar, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) ? (int)v
        : throw new FormatException($"{field}: expected a number, got {(_scalar ?? "a message")}");

    public string Enum(string field) => _scalar is not null && !_quoted ? _scalar : throw new FormatException($"{field}: expected an enum name or number");

    public Dictionary<string, TextValue> Message(string field) => _message ?? throw new FormatException($"{field}: expected a message {{...}}");
}

/// <summary>
/// Reads protobuf text format as protobuf-go prints a message (String(), prototext): fields in
/// order, <c>name:value</c> or <c>name {...}</c>, strings in double quotes with Go escapes. The
/// top level keeps every field in order (repeated fields repeat); a nested message keeps the last
/// value of each field, enough for PortRange, Protocol and IcmpTypeAndCode.
/// </summary>
public static class ProtoText
{
    public static List<KeyValuePair<string, TextValue>> Parse(string text)
    {
        int at = 0;
        List<KeyValuePair<string, TextValue>> fields = Fields(text, ref at, nested: false);
        SkipSpace(text, ref at);
        if (at < text.Length)
        {
            throw new FormatException($"Unexpected '{text[at]}' at {at} of rule text: {text}");
        }

        return fields;
    }

    private static List<KeyValuePair<string, TextValue>> Fields(string text, ref int at, bool nested)
    {
        var fields = new List<KeyValuePair<string, TextValue>>();
        while (true)
        {
            SkipSpace(text, ref at);
            if (at >= text.Length || (nested && text[at] == '}'))
            {
                return fields;
            }

            int start = at;
            while (at < text.Length && (char.IsAsciiLetterOrDigit(text[at]) || text[at] is '_' or '.' or '[' or ']' or '/'))
            {
                at++;
            }

            if (at == start)
            {
                throw new FormatException($"Expected a field name at {at} of rule text: {text}");
            }

            string name = text[start..at];
            SkipSpace(text, ref at);
            if (at < text.Length && text[at] == ':')
            {
                at++;
                SkipSpace(text, ref at);
            }

            fields.Add(new(name, Value(text, ref at)));
            SkipSpace(text, ref at);
            if (at < text.Length && text[at] is ',' or ';')
            {
                at++;
            }
        }
    }

    private static TextValue Value(string text, ref int at)
    {
        if (at >= text.Length)
        {
            throw new FormatException($"A field has no value at the end of rule text: {text}");
        }

        char c = text[at];
        if (c is '{' or '<')
        {
            char close = c == '{' ? '}' : '>';
            at++;
            var message = new Dictionary<string, TextValue>(StringComparer.Ordinal);
            foreach ((string k, TextValue v) in Fields(text, ref at, nested: true))
            {
                message[k] = v;
            }

            if (at >= text.Length || (text[at] != close && text[at] != '}'))
            {
                throw new FormatException($"A message is not closed in rule text: {text}");
            }

            at++;
            return new TextValue(message);
        }

        if (c is '"' or '\'')
        {
            var sb = new StringBuilder();
            at++;
            while (at < text.Length && text[at] != c)
            {
                if (text[at] == '\\' && at + 1 < text.Length)
                {
                    at++;
                    sb.Append(text[at] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', char e => e });
                }
                else
                {
                    sb.Append(text[at]);
                }

                at++;
            }

            if (at >= text.Length)
            {
                throw new FormatException($"A string is not closed in rule text: {text}");
            }

            at++;
            return new TextValue(sb.ToString(), quoted: true);
        }

        int start = at;
        while (at < text.Length && !char.IsWhiteSpace(text[at]) && text[at] is not ('}' or '>' or ',' or ';'))
        {
            at++;
        }

        return new TextValue(text[start..at], quoted: false);
    }

    private static void SkipSpace(string text, ref int at)
    {
        while (at < text.Length && char.IsWhiteSpace(text[at]))
        {
            at++;
        }
    }
}
