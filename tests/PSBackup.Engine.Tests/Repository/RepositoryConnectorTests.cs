using PSBackup.Engine.Repository;
using PSBackup.Engine.Storage;
using PSBackup.Engine.Tests.Support;

namespace PSBackup.Engine.Tests.Repository;

public class RepositoryConnectorTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void ExplicitPassphraseWinsOverTheEnvironment()
    {
        var target = new RepositoryTarget { Location = "/r", Passphrase = "given" };
        RepositoryCredentials c = RepositoryConnector.Credentials(target, Env((RepositoryConnector.KeyFileVariable, "/k")));
        Assert.Equal("given", c.Passphrase);
        Assert.Null(c.KeyFile);
    }

    [Fact]
    public void EnvironmentSuppliesThePassphraseWhenNoneIsGiven()
    {
        RepositoryCredentials c = RepositoryConnector.Credentials(new RepositoryTarget { Location = "/r" }, Env((RepositoryConnector.PassphraseVariable, "from-env")));
        Assert.Equal("from-env", c.Passphrase);
    }

    [Fact]
    public void NoKeyAnywhereMeansAnUnencryptedOpen() =>
        Assert.Same(RepositoryCredentials.None, RepositoryConnector.Credentials(new RepositoryTarget { Location = "/r" }, Env()));

    [Fact]
    public void PassphraseAndKeyFileTogetherAreRefused()
    {
        var target = new RepositoryTarget { Location = "/r", Passphrase = "p", KeyFile = "/k" };
        var e = Assert.Throws<InvalidInputException>(() => RepositoryConnector.Credentials(target, Env()));
        Assert.Equal("AmbiguousRepositoryKey", e.ErrorId);
    }

    [Fact]
    public void S3OptionsOnAFolderAreRefused()
    {
        using var dir = new TestDirectory();
        var e = Assert.Throws<InvalidInputException>(() => RepositoryConnector.OpenBackend(new RepositoryTarget { Location = dir.Path, Endpoint = "http://127.0.0.1:9" }));
        Assert.Equal("InvalidRepository", e.ErrorId);
    }

    [Fact]
    public void AFolderTargetIsALocalBackendThatMustExistUnlessCreated()
    {
        using var dir = new TestDirectory();
        string missing = dir.Combine("repo");
        using (IStorageBackend created = RepositoryConnector.OpenBackend(new RepositoryTarget { Location = missing }, createFolder: true))
        {
            Assert.IsType<LocalBackend>(created);
        }
        Assert.True(Directory.Exists(missing));
        Assert.Throws<NotFoundException>(() => RepositoryConnector.OpenBackend(new RepositoryTarget { Location = dir.Combine("nope") }));
    }

    [Fact]
    public void AnS3TargetRetriesAndParsesTheLocation()
    {
        using IStorageBackend backend = RepositoryConnector.OpenBackend(new RepositoryTarget
        {
            Location = "s3://bucket/hosts/db1", Endpoint = "http://127.0.0.1:9", AccessKey = "a", SecretKey = "b",
        });
        Assert.IsType<RetryingBackend>(backend);
        Assert.Contains("bucket", backend.Location);
    }
}
