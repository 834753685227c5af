using System.Text.Json;
using System.Text.Json.Nodes;
using PSBackup.Engine.ObjectStore;
using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.ObjectStore;
using PSBackup.Engine.Tests.Proofs;
using PSBackup.Engine.Tests.Repository;
using PSBackup.Engine.Tests.Support;
using static PSBackup.Engine.Tests.Repository.RepositoryTestSupport;
using Repo = PSBackup.Engine.Repository.Repository;

namespace PSBackup.Engine.Tests.Hostile;

/// <summary>Whoever can write the storage cannot make a client that holds the key write plaintext:
/// deleting keys/ and rewriting the config to "encryption: none" is refused, with and without the
/// key, and an empty passphrase is an error rather than "no encryption".</summary>
public sealed class EncryptionDowngradeTests : IDisposable
{
    private readonly TestDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>What an attacker with write access does: remove every key and replace the config by
    /// an unencrypted one that keeps the repository id (so clients still recognise it).</summary>
    internal static void Downgrade(string repoFolder)
    {
        foreach (string key in Directory.GetFiles(Path.Combine(repoFolder, "keys")))
        {
            File.Delete(key);
        }
        string configPath = Path.Combine(repoFolder, "config");
        JsonNode config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["encryption"] = "none";
        config["chunkIdAlgorithm"] = "sha256";
        File.WriteAllText(configPath, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    [Fact]
    public async Task A_downgraded_repository_is_refused_with_the_passphrase_and_without_it_and_nothing_is_written()
    {
        string folder = _dir.Combine("repo");
        Directory.CreateDirectory(folder);
        using (var backend = new LocalBackend(folder))
        {
            Repo repo = await Repo.InitializeAsync(backend, Small(passphrase: "correct horse"));
            await BackupAsync(repo, [("a", Data(50_000, 1))]);
        }
        Downgrade(folder);
        TreeState before = TreeState.Capture(folder);

        using (var backend = new LocalBackend(folder))
        {
            var withKey = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("correct horse")));
            Assert.Equal("EncryptionDowngrade", withKey.ErrorId);
            var without = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => Repo.OpenAsync(backend, RepositoryCredentials.None));
            Assert.Equal("EncryptionDowngrade", without.ErrorId);
            Assert.Contains("restore 'config' and 'keys/'", without.Message);
        }
        before.AssertUnchanged(folder);
    }

    [Fact]
    public async Task A_client_that_never_saw_the_repository_encrypted_still_refuses_to_use_a_key_on_a_plaintext_repository()
    {
        using var backend = new MemoryBackend();
        await Repo.InitializeAsync(backend, Small());
        int puts = backend.Puts;
        var e = await Assert.ThrowsAsync<RepositoryIntegrityException>(() => Repo.OpenAsync(backend, RepositoryCredentials.FromPassphrase("p")));
        Assert.Equal("RepositoryNotEncrypted", e.ErrorId);
        Assert.Equal(ErrorKind.Integrity, e.Kind);
        Assert.Contains("not encrypted", e.Message);
        Assert.Equal(puts, backend.Puts);
        Assert.NotNull(await Repo.OpenAsync(backend, RepositoryCredentials.None));
    }

    [Fact]
    public void An_empty_passphrase_or_key_file_from_the_environment_or_a_parameter_is_an_error()
    {
        var target = new RepositoryTarget { Location = "/r" };
        var env = Assert.Throws<InvalidInputException>(() => RepositoryConnector.Credentials(target, n => n == RepositoryConnector.PassphraseVariable ? "" : null));
        Assert.Equal("EmptyPassphrase", env.ErrorId);
        Assert.Contains(RepositoryConnector.PassphraseVariable, env.Message);
        Assert.Equal("EmptyPassphrase", Assert.Throws<InvalidInputException>(() => RepositoryConnector.Credentials(target with { Passphrase = "" }, _ => null)).ErrorId);
        Assert.Equal("EmptyKeyFile", Assert.Throws<InvalidInputException>(() => RepositoryConnector.Credentials(target, n => n == RepositoryConnector.KeyFileVariable ? "" : null)).ErrorId);
    }

    [Fact]
    public async Task The_cli_refuses_an_empty_PSBACKUP_PASSPHRASE_and_writes_no_plaintext_into_a_downgraded_repository()
    {
        string repo = _dir.Combine("cli-repo");
        var empty = new Dictionary<string, string?> { ["PSBACKUP_PASSPHRASE"] = "" };
        using (CliProcess init = CliProcess.Start(empty, "repo", "init", "--repository", repo))
        {
            Assert.Equal(2, await init.WaitAsync(TimeSpan.FromMinutes(2)));
            Assert.Contains("PSBACKUP_PASSPHRASE", init.Stderr);
        }
        Assert.False(Directory.Exists(repo));

        var secret = new Dictionary<string, string?> { ["PSBACKUP_PASSPHRASE"] = "battery staple" };
        await CliProcess.RunOkAsync(TimeSpan.FromMinutes(2), "repo", "init", "--repository", repo, "--passphrase", "battery staple");
        using var db = new ObjectFixture();
        File.WriteAllText(Path.Combine(db.ObjectPath, "files", "secret.txt"), "TOP-SECRET-PLAINTEXT " + new string('x', 5000));
        using (CliProcess first = CliProcess.Start(secret, "object", "backup", "--db-root", db.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", repo))
        {
            Assert.Equal(0, await first.WaitAsync(TimeSpan.FromMinutes(2)));
        }
        Downgrade(repo);
        TreeState before = TreeState.Capture(repo);

        using (CliProcess again = CliProcess.Start(secret, "object", "backup", "--db-root", db.DbRoot, "--dir", ObjectFixture.Dir, "--object", ObjectFixture.Object, "--repository", repo, "--force"))
        {
            Assert.Equal(4, await again.WaitAsync(TimeSpan.FromMinutes(2)));
            Assert.Contains("was encrypted", again.Stderr);
        }
        before.AssertUnchanged(repo);
        foreach (string f in Directory.GetFiles(repo, "*", SearchOption.AllDirectories))
        {
            Assert.DoesNotContain("TOP-SECRET", File.ReadAllText(f));
        }
    }
}
