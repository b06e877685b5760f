namespace CalicoBpf.Tests;

/// <summary>Table cells wrapped at spaces, not inside "5.3.0".</summary>
public class ConsoleTextTests
{
    [Theory]
    [InlineData("kernel is too old (have: 4.15.0-213 but want at least: 5.3.0).", 20, "kernel is too old\n(have: 4.15.0-213\nbut want at least:\n5.3.0).")]
    [InlineData("short", 20, "short")]
    [InlineData("a-very-long-token-without-spaces", 12, "a-very-long-\ntoken-withou\nt-spaces")]
    [InlineData("no console width", -1, "no console width")]
    public void Wraps_at_spaces_within_the_width(string text, int width, string expected)
    {
        string wrapped = ConsoleText.WordWrap(text, width);
        Assert.Equal(expected, wrapped);
        if (width >= 10)
        {
            Assert.All(wrapped.Split('\n'), l => Assert.True(l.Length <= width, l));
        }
    }
}
