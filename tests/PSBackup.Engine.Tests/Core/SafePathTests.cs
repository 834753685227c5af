using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Core;

public class SafePathTests
{
    [Theory]
    [InlineData("..")]
    [InlineData("../x")]
    [InlineData("a/../b")]
    [InlineData("a/./b")]
    [InlineData("/abs")]
    [InlineData("/")]
    [InlineData("C:\\x")]
    [InlineData("C:x")]
    [InlineData("c:/x")]
    [InlineData("\\\\server\\share")]
    [InlineData("a\\b")]
    [InlineData("a//b")]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("a\0b")]
    [InlineData("a\nb")]
    public void RelativePathRejectsEveryEscapeForm(string value)
    {
        var e = Assert.Throws<InvalidInputException>(() => SafePath.ValidateRelativePath(value, "backup dir"));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Equal("InvalidPath", e.ErrorId);
        Assert.Contains("backup dir", e.Message);
        Assert.DoesNotContain("\0", e.Message);
    }

    [Theory]
    [InlineData("wal/archive", "wal/archive")]
    [InlineData("wal/archive/", "wal/archive")]
    [InlineData("snapshots/users-20250108.snapshot", "snapshots/users-20250108.snapshot")]
    [InlineData("a..b/c", "a..b/c")]
    public void RelativePathAcceptsPlainForms(string value, string expected) =>
        Assert.Equal(expected, SafePath.ValidateRelativePath(value, "path"));

    [Theory]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData(".hidden")]
    [InlineData("-flag")]
    [InlineData("a/b")]
    [InlineData("a\\b")]
    [InlineData("a b")]
    [InlineData("trailing.")]
    [InlineData("")]
    [InlineData("C:")]
    public void NamesRejectUnsafeForms(string value)
    {
        var e = Assert.Throws<InvalidInputException>(() => SafePath.ValidateName(value, "namespace"));
        Assert.Equal("InvalidName", e.ErrorId);
        Assert.Contains("namespace", e.Message);
    }

    [Fact]
    public void NamesRejectOverlongValues() =>
        Assert.Throws<InvalidInputException>(() => SafePath.ValidateName(new string('a', 129), "object"));

    [Theory]
    [InlineData("users")]
    [InlineData("customer_a")]
    [InlineData("shard-db.v2")]
    [InlineData("_internal")]
    public void NamesAcceptPlainForms(string value) => Assert.Equal(value, SafePath.ValidateName(value, "namespace"));

    [Fact]
    public void CombineStaysUnderTheRoot()
    {
        using var dir = new TestDirectory();
        string full = SafePath.Combine(dir.Path, "wal/archive", "backup dir");
        Assert.Equal(Path.Combine(dir.Path, "wal", "archive"), full);
    }

    [Fact]
    public void CombineRefusesASymbolicLinkBelowTheRoot()
    {
        using var dir = new TestDirectory();
        string outside = dir.Combine("outside");
        string root = dir.Combine("root");
        Directory.CreateDirectory(outside);
        Directory.CreateDirectory(root);
        Directory.CreateSymbolicLink(Path.Combine(root, "wal"), outside);

        var e = Assert.Throws<InvalidInputException>(() => SafePath.Combine(root, "wal/archive", "backup dir"));
        Assert.Equal("SymbolicLink", e.ErrorId);
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/../../x")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b")]
    [InlineData("")]
    public void JoinUnderAFreshRootRefusesWhatCombineRefuses(string relative)
    {
        using var dir = new TestDirectory();
        Assert.Throws<InvalidInputException>(() => SafePath.Combine(dir.Path, relative, "restored file"));
        Assert.Throws<InvalidInputException>(() => SafePath.JoinUnderFreshRoot(dir.Path, relative, "restored file"));
    }

    [Fact]
    public void JoinUnderAFreshRootGivesCombinesPathWithoutTouchingTheDisk()
    {
        using var dir = new TestDirectory();
        string root = dir.Combine("never-made");
        Assert.Equal(Path.Combine(root, "data", "000.bin"), SafePath.JoinUnderFreshRoot(root, "data/000.bin", "restored file"));
        Assert.False(Directory.Exists(root));
    }

    [Fact]
    public void RequireDirectoryReportsMissingFolderAsNotFound()
    {
        using var dir = new TestDirectory();
        var e = Assert.Throws<NotFoundException>(() => SafePath.RequireDirectory(dir.Combine("nope"), "data dir", "Check -DataDir."));
        Assert.Contains("Check -DataDir.", e.Message);
    }
}
