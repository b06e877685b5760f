namespace CalicoBpf.Tests.Support;

public static class Hex
{
    /// <summary>Bytes from hex text as the reference prints them ("06 00 00 00 0a 41 ..."); "00x16" repeats a byte.</summary>
    public static byte[] Parse(string text)
    {
        var bytes = new List<byte>();
        foreach (string token in text.Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            int times = 1;
            string b = token;
            int x = token.IndexOf('x', StringComparison.Ordinal);
            if (x == 2)
            {
                times = int.Parse(token[3..], System.Globalization.CultureInfo.InvariantCulture);
                b = token[..2];
            }

            for (int i = 0; i < times; i++)
            {
                bytes.Add(Convert.ToByte(b, 16));
            }
        }

        return bytes.ToArray();
    }
}
