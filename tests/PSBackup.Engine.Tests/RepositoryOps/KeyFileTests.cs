using PSBackup.Cli;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.RepositoryOps;

/// <summary>New-BackupKeyFile's engine: owner-only key files, never replaced by accident, and the
/// key usable as a file or as its text.</summary>
public sealed class KeyFileTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_new_key_file_is_owner_only_random_text_and_is_never_replaced_without_force()
    {
        string path = _dir.Combine("repo.key");

        KeyFileInfo info = (await KeyFiles.NewAsync(new NewKeyFileOptions(path), OperationContext.Default))!;
        byte[] first = File.ReadAllBytes(path);

        Assert.Equal(88, first.Length);
        Assert.Equal(64, Convert.FromBase64String(System.Text.Encoding.ASCII.GetString(first)).Length);
        Assert.Equal(path, info.Path);
        Assert.Matches("^[0-9a-f]{16}$", info.Fingerprint);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
        Assert.Null(KeyFiles.PermissionWarning(path));
        Assert.Empty(Directory.GetFiles(_dir.Path, "*.tmp"));

        var e = await Assert.ThrowsAsync<ConflictException>(() => KeyFiles.NewAsync(new NewKeyFileOptions(path), OperationContext.Default));
        Assert.Equal("KeyFileExists", e.ErrorId);
        Assert.Equal(first, File.ReadAllBytes(path));
        Assert.Null(await KeyFiles.NewAsync(new NewKeyFileOptions(path) { Force = true }, new OperationContext { ShouldProcess = (_, _) => false }));
        Assert.Equal(first, File.ReadAllBytes(path));
        await KeyFiles.NewAsync(new NewKeyFileOptions(path) { Force = true }, OperationContext.Default);
        Assert.NotEqual(first, File.ReadAllBytes(path));
    }

    [Fact]
    public void A_key_file_others_can_read_gets_a_warning_naming_the_fix()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // the ACL variant is exercised where Windows runs
        }
        string path = _dir.Combine("loose.key");
        File.WriteAllBytes(path, new byte[64]);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        string? warning = KeyFiles.PermissionWarning(path);

        Assert.NotNull(warning);
        Assert.Contains("every user", warning);
        Assert.Contains("chmod 600", warning);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        Assert.Contains("its group", KeyFiles.PermissionWarning(path));
    }

    [Fact]
    public async Task The_key_opens_the_repository_as_a_file_or_as_its_text_and_a_short_key_is_refused()
    {
        string keyFile = _dir.Combine("repo.key");
        await KeyFiles.NewAsync(new NewKeyFileOptions(keyFile), OperationContext.Default);
        var byFile = new RepositoryTarget { Location = _dir.Combine("repo"), KeyFile = keyFile };
        RepositoryInfo info = (await RepositoryOperations.InitializeAsync(new InitializeRepositoryOptions(byFile), OperationContext.Default))!;
        Assert.Equal("key-file", info.KeyKind);

        var byText = new RepositoryTarget { Location = byFile.Location, Key = File.ReadAllText(keyFile) };
        using (OpenRepository open = await RepositoryConnector.OpenAsync(byText, CancellationToken.None))
        {
            Assert.True(open.Repository.IsEncrypted);
        }
        await Assert.ThrowsAsync<RepositoryKeyException>(() => RepositoryConnector.OpenAsync(byText with { Key = new string('x', 88) }, CancellationToken.None));
        var shortKey = await Assert.ThrowsAsync<InvalidInputException>(() => RepositoryConnector.OpenAsync(byText with { Key = "short" }, CancellationToken.None));
        Assert.Equal("KeyFileTooShort", shortKey.ErrorId);
        Assert.Throws<InvalidInputException>(() => RepositoryConnector.Credentials(byText with { KeyFile = keyFile }));
    }

    [Fact]
    public async Task The_CLI_warns_about_a_key_file_others_can_read_given_as_an_option_or_in_the_environment()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // the ACL variant is exercised where Windows runs
        }
        string path = _dir.Combine("loose.key");
        string repo = _dir.Combine("repo");
        Assert.Equal(0, await TestCli.RunAsync(["key", "new", "--path", path], new StringWriter(), new StringWriter(), CancellationToken.None));
        Assert.Equal(0, await TestCli.RunAsync(["repo", "init", "--repository", repo, "--key-file", path], new StringWriter(), new StringWriter(), CancellationToken.None));
        var quiet = new StringWriter();
        Assert.Equal(0, await TestCli.RunAsync(["list", "--repository", repo, "--key-file", path], new StringWriter(), quiet, CancellationToken.None));
        Assert.Equal("", quiet.ToString()); // owner-only: no warning

        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var e = new StringWriter();
        Assert.Equal(0, await TestCli.RunAsync(["list", "--repository", repo, "--key-file", path], new StringWriter(), e, CancellationToken.None));
        string line = Assert.Single(e.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("psbackup: warning: ", line);
        Assert.Contains("its group", line);
        Assert.Contains($"chmod 600 {path}", line);

        // From the environment, as a systemd unit's EnvironmentFile gives it: a process of its own,
        // since this one's environment is shared by the tests running beside it.
        using Proofs.CliProcess fromEnvironment = Proofs.CliProcess.Start(
            new Dictionary<string, string?> { [RepositoryConnector.KeyFileVariable] = path }, "list", "--repository", repo);
        Assert.Equal(0, await fromEnvironment.WaitAsync(TimeSpan.FromMinutes(2)));
        Assert.Contains($"chmod 600 {path}", fromEnvironment.Stderr);
    }

    [Fact]
    public async Task The_CLI_key_new_writes_the_file_and_refuses_an_existing_one_with_exit_5()
    {
        string path = _dir.Combine("cli.key");
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, await TestCli.RunAsync(["key", "new", "--path", path, "--json"], o, e, CancellationToken.None));
        Assert.Contains("\"fingerprint\"", o.ToString());
        Assert.True(File.Exists(path));
        Assert.Equal(5, await TestCli.RunAsync(["key", "new", "--path", path], new StringWriter(), e, CancellationToken.None));
        Assert.Contains("already exists", e.ToString());
    }
}
