namespace CalicoBpf.Cluster;

/// <summary>
/// Whether Go's regexp (RE2 syntax) compiles a pattern, as Felix's regexp parameters and Calico's
/// validator do. The pattern is read token by token: what Go has and .NET spells differently is
/// translated ((?P&lt;name&gt;, \Q...\E, \x{41}, the U flag) and what Go has not is refused with its
/// name (look-around, back-references, atomic groups, comments, \Z, \G, flags other than imsU,
/// repeats over 1000); the rest is compiled by .NET's parser, which names any other mistake.
/// </summary>
public static class GoRegexp
{
    /// <summary>What is wrong with <paramref name="pattern"/> for Go, in a phrase; null when Go takes it.</summary>
    public static string? Problem(string pattern)
    {
        var net = new StringBuilder(pattern.Length + 8);
        int i = 0;
        while (i < pattern.Length)
        {
            char c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                char n = pattern[i + 1];
                if (n is >= '1' and <= '9' || n == 'k')
                {
                    return $"uses \\{n}, a back-reference, which Go's regular expressions do not have";
                }

                if (n is 'Z' or 'G')
                {
                    return $"uses \\{n}, which Go's regular expressions do not have (use $ or \\z)";
                }

                if (n == 'Q')
                {
                    int end = pattern.IndexOf("\\E", i + 2, StringComparison.Ordinal);
                    net.Append(Regex.Escape(end < 0 ? pattern[(i + 2)..] : pattern[(i + 2)..end]));
                    i = end < 0 ? pattern.Length : end + 2;
                    continue;
                }

                if (n == 'x' && i + 2 < pattern.Length && pattern[i + 2] == '{')
                {
                    int close = pattern.IndexOf('}', i + 3);
                    if (close < 0 || !int.TryParse(pattern.AsSpan(i + 3, close - i - 3), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int code) || code > 0x10FFFF)
                    {
                        return "has a \\x{...} escape that is not a hexadecimal code point";
                    }

                    net.Append(code <= 0xFFFF ? $"\\u{code:X4}" : ".");
                    i = close + 1;
                    continue;
                }

                net.Append(c).Append(n);
                i += 2;
                continue;
            }

            if (c == '[')
            {
                int end = ClassEnd(pattern, i);
                net.Append(pattern, i, end - i);
                i = end;
                continue;
            }

            if (c == '(' && i + 1 < pattern.Length && pattern[i + 1] == '?')
            {
                string rest = pattern[(i + 2)..];
                if (rest.StartsWith("P<", StringComparison.Ordinal))
                {
                    net.Append("(?<");
                    i += 4;
                    continue;
                }

                if (rest.StartsWith('=') || rest.StartsWith('!') || rest.StartsWith("<=", StringComparison.Ordinal) || rest.StartsWith("<!", StringComparison.Ordinal))
                {
                    return $"uses (?{rest[..(rest.StartsWith('<') ? 2 : 1)]}, look-around, which Go's regular expressions do not have";
                }

                if (rest.StartsWith('>') || rest.StartsWith('#') || rest.StartsWith('\'') || rest.StartsWith('(') || rest.StartsWith('|'))
                {
                    return $"uses (?{rest[0]}, which Go's regular expressions do not have (no atomic groups, comments, conditionals or quoted names)";
                }

                if (!rest.StartsWith('<') && !rest.StartsWith(':'))
                {
                    Match flags = Regex.Match(rest, @"^([A-Za-z-]*)([:)])");
                    if (!flags.Success || flags.Groups[1].Value.Any(f => f is not ('i' or 'm' or 's' or 'U' or '-')))
                    {
                        return $"uses the flags (?{(flags.Success ? flags.Groups[1].Value : rest)}; Go's regular expressions have i, m, s and U";
                    }

                    string dotnet = flags.Groups[1].Value.Replace("U", string.Empty, StringComparison.Ordinal);
                    bool group = flags.Groups[2].Value == ":";
                    net.Append(group ? $"(?{(dotnet.Trim('-').Length > 0 ? dotnet : string.Empty)}:" : dotnet.Trim('-').Length > 0 ? $"(?{dotnet})" : string.Empty);
                    i += 2 + flags.Length;
                    continue;
                }
            }

            if (c == '{' && Regex.Match(pattern[i..], @"^\{(\d+)(?:,(\d*))?\}") is { Success: true } repeat
                && (int.Parse(repeat.Groups[1].Value, CultureInfo.InvariantCulture) > 1000
                    || (repeat.Groups[2].Value.Length > 0 && int.Parse(repeat.Groups[2].Value, CultureInfo.InvariantCulture) > 1000)))
            {
                return $"repeats {repeat.Value}; Go's regular expressions repeat at most 1000 times";
            }

            net.Append(c);
            i++;
        }

        try
        {
            _ = new Regex(net.ToString(), RegexOptions.CultureInvariant);
            return null;
        }
        catch (ArgumentException ex)
        {
            return "is not a regular expression: " + ex.Message.TrimEnd('.');
        }
    }

    /// <summary>The index after the character class that opens at <paramref name="open"/> (a ] first in it is literal).</summary>
    private static int ClassEnd(string pattern, int open)
    {
        int j = open + 1;
        if (j < pattern.Length && pattern[j] == '^')
        {
            j++;
        }

        if (j < pattern.Length && pattern[j] == ']')
        {
            j++;
        }

        while (j < pattern.Length && pattern[j] != ']')
        {
            if (pattern[j] == '\\')
            {
                j++;
            }
            else if (pattern[j] == '[' && j + 1 < pattern.Length && pattern[j + 1] == ':' && pattern.IndexOf(":]", j + 2, StringComparison.Ordinal) is int posix and > 0)
            {
                j = posix + 1;
            }

            j++;
        }

        return Math.Min(j + 1, pattern.Length);
    }
}
