namespace PSBackup.Engine.Tests.Core;

/// <summary>Refusal messages say what is wrong (issue 12, item 13): a colon after one letter is a
/// drive on Windows, not an "absolute" path; messages built from another message end a sentence
/// with one period.</summary>
public sealed class ErrorMessageTests
{
    /// <summary>Before: "The object file 'x:y.txt' is absolute".</summary>
    [Theory]
    [InlineData("x:y.txt")]
    [InlineData("a:b")]
    [InlineData("data/../x")]
    public void A_name_with_a_drive_like_colon_is_refused_for_what_it_is(string path)
    {
        var e = Assert.Throws<InvalidInputException>(() => SafePath.ValidateRelativePath(path, "object file"));
        Assert.DoesNotContain("is absolute", e.Message);
        if (path.Contains(':'))
        {
            Assert.Contains($"Windows reads as drive {char.ToUpperInvariant(path[0])}:", e.Message);
        }
    }

    [Theory]
    [InlineData("C:/x")]
    [InlineData("/etc/passwd")]
    [InlineData("c:")]
    public void A_rooted_or_drive_path_is_still_called_absolute(string path)
    {
        var e = Assert.Throws<InvalidInputException>(() => SafePath.ValidateRelativePath(path, "object file"));
        Assert.Contains("is absolute", e.Message);
    }

    /// <summary>Before: "… a plain relative path.. The manifest is damaged or hostile".</summary>
    [Theory]
    [InlineData("Backup x: bad path.. The manifest is damaged.", "Backup x: bad path. The manifest is damaged.")]
    [InlineData("then run again..", "then run again.")]
    [InlineData("contains '..'. Give a path", "contains '..'. Give a path")]
    [InlineData("listed: a, b, ... Remove them", "listed: a, b, ... Remove them")]
    [InlineData("the path 'a/..' is refused", "the path 'a/..' is refused")]
    public void Two_periods_ending_a_sentence_become_one_and_nothing_else_changes(string message, string expected)
    {
        Assert.Equal(expected, new InvalidInputException("X", message).Message);
    }
}
