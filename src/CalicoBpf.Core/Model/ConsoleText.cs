namespace CalicoBpf;

/// <summary>Text for a console table cell that PowerShell would otherwise wrap inside words.</summary>
public static class ConsoleText
{
    /// <summary>
    /// <paramref name="text"/> broken into lines of at most <paramref name="width"/> characters at spaces
    /// (a word longer than a line is broken where it must). PowerShell's table and list wrapping breaks
    /// at the column edge, inside words and numbers ("5" / ".3.0"); a cell already wrapped this way is
    /// left alone. A width below 10 (no console, or one too narrow to help) returns the text as it is.
    /// </summary>
    public static string WordWrap(string? text, int width)
    {
        if (string.IsNullOrEmpty(text) || width < 10 || text.Length <= width)
        {
            return text ?? string.Empty;
        }

        var sb = new StringBuilder(text.Length + 8);
        int line = 0;
        foreach (string word in text.Split(' '))
        {
            string w = word;
            if (line > 0 && line + 1 + w.Length > width)
            {
                sb.Append('\n');
                line = 0;
            }
            else if (line > 0)
            {
                sb.Append(' ');
                line++;
            }

            while (w.Length > width - line)
            {
                int take = width - line;
                sb.Append(w, 0, take).Append('\n');
                w = w[take..];
                line = 0;
            }

            sb.Append(w);
            line += w.Length;
        }

        return sb.ToString();
    }
}
