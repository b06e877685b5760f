namespace CalicoBpf.Transport;

/// <summary>
/// Reads a stream made of lines, some of them huge (a whole bpftool -j dump is one line): short lines
/// come back as text, a long one as a stream that ends at its newline, so nothing holds a whole dump.
/// </summary>
public sealed class LineSections
{
    private readonly Stream _inner;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _position;
    private int _length;
    private bool _eof;

    public LineSections(Stream inner) => _inner = inner;

    /// <summary>The next non-empty line as text (for headers: keep them short), or null at the end.</summary>
    public string? ReadLine()
    {
        // Straight from the read buffer: a copy through Stream.CopyTo would rent (and, with many nodes read
        // at once, allocate) an 80 KB buffer for each header line.
        using var line = new MemoryStream();
        while (EnsureData())
        {
            bool ended = Take(int.MaxValue, out int start, out int n);
            line.Write(_buffer, start, n);
            if (ended && line.Length > 0)
            {
                return Text(line);
            }
        }

        return line.Length > 0 ? Text(line) : null;

        static string Text(MemoryStream line) => System.Text.Encoding.UTF8.GetString(line.GetBuffer(), 0, (int)line.Length);
    }

    /// <summary>
    /// Consumes up to <paramref name="max"/> bytes of the current line from the read buffer (which holds
    /// data), and its newline when reached: the bytes are at <paramref name="start"/>; true when the line ended.
    /// </summary>
    private bool Take(int max, out int start, out int n)
    {
        int available = Math.Min(max, _length - _position);
        int newline = Array.IndexOf(_buffer, (byte)'\n', _position, available);
        start = _position;
        n = newline < 0 ? available : newline - _position;
        _position += newline < 0 ? n : n + 1;
        return newline >= 0;
    }

    /// <summary>The next line as a stream that ends before its newline; disposing it skips what was not read.</summary>
    public Stream OpenLine() => new LineStream(this);

    private bool EnsureData()
    {
        if (_position < _length)
        {
            return true;
        }

        if (_eof)
        {
            return false;
        }

        _position = 0;
        _length = _inner.Read(_buffer, 0, _buffer.Length);
        _eof = _length == 0;
        return !_eof;
    }

    private sealed class LineStream : Stream
    {
        private readonly LineSections _owner;
        private bool _ended;

        public LineStream(LineSections owner) => _owner = owner;

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_ended || count == 0 || !_owner.EnsureData())
            {
                _ended = true;
                return 0;
            }

            _ended = _owner.Take(count, out int start, out int n);
            Array.Copy(_owner._buffer, start, buffer, offset, n);
            return n;
        }

        protected override void Dispose(bool disposing)
        {
            // What was not read is skipped in the owner's buffer, up to and past the newline.
            while (!_ended && _owner.EnsureData())
            {
                _ended = _owner.Take(int.MaxValue, out _, out _);
            }

            _ended = true;
            base.Dispose(disposing);
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
