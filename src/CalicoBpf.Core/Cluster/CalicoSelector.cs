namespace CalicoBpf.Cluster;

/// <summary>
/// A Calico label selector (the nodeSelector of selector-scoped FelixConfigurations and of IP pools):
/// <c>all()</c>, <c>global()</c>, <c>has(k)</c>, <c>k == 'v'</c>, <c>k != 'v'</c>, <c>k in {'a', 'b'}</c>,
/// <c>k not in {...}</c>, <c>k contains 's'</c>, <c>k starts with 's'</c>, <c>k ends with 's'</c>,
/// combined with <c>!</c>, <c>&amp;&amp;</c>, <c>||</c> and parentheses, as libcalico-go's selector
/// parser reads them. A label that is absent matches <c>!=</c> and <c>not in</c>, and nothing else.
/// </summary>
public sealed class CalicoSelector
{
    private readonly Func<IReadOnlyDictionary<string, string>, bool> _match;

    private CalicoSelector(string text, Func<IReadOnlyDictionary<string, string>, bool> match)
    {
        Text = text;
        _match = match;
    }

    /// <summary>The selector as written.</summary>
    public string Text { get; }

    public bool Matches(IReadOnlyDictionary<string, string> labels) => _match(labels);

    public override string ToString() => Text;

    /// <summary>Parses a selector; an empty one is all(). A FormatException names the position and what was expected.</summary>
    public static CalicoSelector Parse(string text)
    {
        var p = new Parser(text);
        Func<IReadOnlyDictionary<string, string>, bool> match = p.AtEnd() ? _ => true : p.Or();
        if (!p.AtEnd())
        {
            throw p.Error("the end of the selector or && or ||");
        }

        return new CalicoSelector(text, match);
    }

    private sealed class Parser
    {
        private readonly string _s;
        private int _at;

        public Parser(string s) => _s = s;

        public bool AtEnd()
        {
            SkipSpace();
            return _at >= _s.Length;
        }

        public FormatException Error(string expected) =>
            new($"The selector \"{_s}\" is not valid at position {_at + 1}: {expected} was expected{(_at < _s.Length ? $", not \"{_s[_at..Math.Min(_s.Length, _at + 12)]}\"" : " before its end")}.");

        public Func<IReadOnlyDictionary<string, string>, bool> Or()
        {
            var left = And();
            while (Take("||"))
            {
                var l = left;
                var r = And();
                left = labels => l(labels) || r(labels);
            }

            return left;
        }

        private Func<IReadOnlyDictionary<string, string>, bool> And()
        {
            var left = Unary();
            while (Take("&&"))
            {
                var l = left;
                var r = Unary();
                left = labels => l(labels) && r(labels);
            }

            return left;
        }

        private Func<IReadOnlyDictionary<string, string>, bool> Unary()
        {
            if (Take("!"))
            {
                var inner = Unary();
                return labels => !inner(labels);
            }

            if (Take("("))
            {
                var inner = Or();
                Expect(")");
                return inner;
            }

            if (TakeWord("all") || TakeWord("global"))
            {
                Expect("(");
                Expect(")");
                return _ => true;
            }

            if (TakeWord("has"))
            {
                Expect("(");
                string key = Label();
                Expect(")");
                return labels => labels.ContainsKey(key);
            }

            string label = Label();
            if (Take("=="))
            {
                string v = Literal();
                return labels => labels.TryGetValue(label, out string? x) && x == v;
            }

            if (Take("!="))
            {
                string v = Literal();
                return labels => !labels.TryGetValue(label, out string? x) || x != v;
            }

            if (TakeWord("not"))
            {
                if (!TakeWord("in"))
                {
                    throw Error("in (after not)");
                }

                HashSet<string> set = Set();
                return labels => !labels.TryGetValue(label, out string? x) || !set.Contains(x);
            }

            if (TakeWord("in"))
            {
                HashSet<string> set = Set();
                return labels => labels.TryGetValue(label, out string? x) && set.Contains(x);
            }

            if (TakeWord("contains"))
            {
                string v = Literal();
                return labels => labels.TryGetValue(label, out string? x) && x.Contains(v, StringComparison.Ordinal);
            }

            if (TakeWord("starts"))
            {
                ExpectWord("with");
                string v = Literal();
                return labels => labels.TryGetValue(label, out string? x) && x.StartsWith(v, StringComparison.Ordinal);
            }

            if (TakeWord("ends"))
            {
                ExpectWord("with");
                string v = Literal();
                return labels => labels.TryGetValue(label, out string? x) && x.EndsWith(v, StringComparison.Ordinal);
            }

            throw Error("==, !=, in, not in, contains, starts with or ends with (after the label)");
        }

        private HashSet<string> Set()
        {
            Expect("{");
            var set = new HashSet<string>(StringComparer.Ordinal);
            if (Take("}"))
            {
                return set;
            }

            do
            {
                set.Add(Literal());
            }
            while (Take(","));
            Expect("}");
            return set;
        }

        private string Label()
        {
            SkipSpace();
            int start = _at;
            while (_at < _s.Length && IsLabelChar(_s[_at]))
            {
                _at++;
            }

            if (_at == start)
            {
                throw Error("a label, has(...), all(), ! or (");
            }

            return _s[start.._at];
        }

        private string Literal()
        {
            SkipSpace();
            if (_at >= _s.Length || _s[_at] is not ('"' or '\''))
            {
                throw Error("a quoted value");
            }

            char quote = _s[_at];
            int end = _s.IndexOf(quote, _at + 1);
            if (end < 0)
            {
                throw Error($"a closing {quote}");
            }

            string v = _s[(_at + 1)..end];
            _at = end + 1;
            return v;
        }

        private bool Take(string token)
        {
            SkipSpace();
            if (string.CompareOrdinal(_s, _at, token, 0, token.Length) == 0)
            {
                _at += token.Length;
                return true;
            }

            return false;
        }

        /// <summary>A keyword, not the start of a longer label (has vs hash, in vs inner).</summary>
        private bool TakeWord(string word)
        {
            SkipSpace();
            int end = _at + word.Length;
            if (string.CompareOrdinal(_s, _at, word, 0, word.Length) == 0
                && (end >= _s.Length || !IsLabelChar(_s[end])))
            {
                _at = end;
                return true;
            }

            return false;
        }

        private void Expect(string token)
        {
            if (!Take(token))
            {
                throw Error(token);
            }
        }

        private void ExpectWord(string word)
        {
            if (!TakeWord(word))
            {
                throw Error(word);
            }
        }

        private static bool IsLabelChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '/' or '-';

        private void SkipSpace()
        {
            while (_at < _s.Length && char.IsWhiteSpace(_s[_at]))
            {
                _at++;
            }
        }
    }
}
