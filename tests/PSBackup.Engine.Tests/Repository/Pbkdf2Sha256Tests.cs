using System.Security.Cryptography;
using System.Text;
using PSBackup.Engine.Repository;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>The passphrase's key derivation gives exactly PBKDF2-HMAC-SHA256: the RFC 7914 §11
/// vectors, and .NET's own implementation over passwords around the HMAC block size, salts,
/// iteration counts and output lengths of more than one block.</summary>
public sealed class Pbkdf2Sha256Tests
{

    [Theory]
    [InlineData("passwd", "salt", 1,
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")]
    [InlineData("Password", "NaCl", 80000,
        "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d")]
    public void It_matches_the_RFC_7914_vectors(string password, string salt, int iterations, string expectedHex)
    {
        byte[] derived = Pbkdf2Sha256.Derive(Encoding.ASCII.GetBytes(password), Encoding.ASCII.GetBytes(salt), iterations, 64);
        Assert.Equal(expectedHex, Convert.ToHexString(derived).ToLowerInvariant());
    }

    [Theory]
    [InlineData(0, 16, 1, 32)]
    [InlineData(1, 16, 2, 32)]
    [InlineData(20, 32, 1000, 32)]
    [InlineData(63, 8, 3, 20)]
    [InlineData(64, 16, 5, 33)]
    [InlineData(65, 16, 5, 64)]
    [InlineData(200, 0, 7, 100)]
    public void It_gives_the_bytes_dotnets_PBKDF2_gives(int passwordLength, int saltLength, int iterations, int length)
    {
        byte[] password = RandomNumberGenerator.GetBytes(passwordLength);
        byte[] salt = RandomNumberGenerator.GetBytes(saltLength);

        byte[] ours = Pbkdf2Sha256.Derive(password, salt, iterations, length);

        Assert.Equal(Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, length), ours);
    }

    [Fact]
    public void A_repository_passphrase_derives_the_same_key_as_before()
    {
        // The wrap key of an existing repository: 600,000 iterations, a 16-byte salt, UTF-8.
        byte[] password = Encoding.UTF8.GetBytes("correct horse battery staple – ünïcode");
        byte[] salt = RandomNumberGenerator.GetBytes(16);

        Assert.Equal(Rfc2898DeriveBytes.Pbkdf2(password, salt, 600_000, HashAlgorithmName.SHA256, 32), Pbkdf2Sha256.Derive(password, salt, 600_000, 32));
    }
}

/// <summary>The derivation on every platform, including where there is no libcrypto (Windows,
/// where it is .NET's own PBKDF2): the Windows leg runs this class under Wine. Wine's bcrypt
/// refuses HMAC keys longer than the 64-byte block (0xc1000008, where Windows' CNG hashes them
/// first) and takes minutes for 600,000 iterations, so the cases here stay within what it does;
/// <see cref="Pbkdf2Sha256Tests"/> covers the rest on Linux.</summary>
public sealed class Pbkdf2Sha256PlatformTests
{
    [Fact]
    public void The_fast_path_is_taken_exactly_where_libcrypto_is()
    {
        Assert.Equal(OperatingSystem.IsLinux(), Pbkdf2Sha256.Fast);
    }

    [Fact]
    public void It_matches_the_RFC_7914_vector()
    {
        byte[] derived = Pbkdf2Sha256.Derive(Encoding.ASCII.GetBytes("passwd"), Encoding.ASCII.GetBytes("salt"), 1, 64);
        Assert.Equal("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
            Convert.ToHexString(derived).ToLowerInvariant());
    }

    // Vectors computed with Python's hashlib.pbkdf2_hmac (an implementation independent of .NET's
    // and of libcrypto's SHA256_Transform path): comparing against .NET's PBKDF2 here would compare
    // the fallback with itself, and under Wine .NET's PBKDF2 (bcrypt) throws 0xc1000008 for random
    // binary passwords and then leaves the test process hanging.
    [Theory]
    [InlineData("password", "salt", 1, "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")]
    [InlineData("password", "salt", 2, "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43")]
    [InlineData("password", "salt", 4096, "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a")]
    [InlineData("passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9")]
    public void It_gives_independently_computed_vectors(string password, string salt, int iterations, string expectedHex)
    {
        byte[] derived = Pbkdf2Sha256.Derive(Encoding.ASCII.GetBytes(password), Encoding.ASCII.GetBytes(salt), iterations, expectedHex.Length / 2);
        Assert.Equal(expectedHex, Convert.ToHexString(derived).ToLowerInvariant());
    }
}
