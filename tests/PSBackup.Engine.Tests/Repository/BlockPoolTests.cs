using PSBackup.Engine.Repository;
using Xunit;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>The write path's pool of large blocks: one free list per power-of-two size, shared by
/// every thread, a bounded number kept.</summary>
public sealed class BlockPoolTests
{
    [Theory]
    [InlineData(1, 1 << 16)]
    [InlineData(65_536, 1 << 16)]
    [InlineData(65_537, 1 << 17)]
    [InlineData(2 * 1024 * 1024, 2 * 1024 * 1024)]
    [InlineData(2 * 1024 * 1024 + 1, 4 * 1024 * 1024)]
    [InlineData(16 * 1024 * 1024, 16 * 1024 * 1024)]
    public void A_block_is_the_smallest_power_of_two_that_holds_the_length(int length, int expected)
    {
        Assert.Equal(expected, new BlockPool(2).Rent(length).Length);
    }

    [Fact]
    public void A_block_returned_on_one_thread_is_rented_on_another_and_only_so_many_are_kept()
    {
        var pool = new BlockPool(2);
        byte[] a = pool.Rent(100_000), b = pool.Rent(100_000), c = pool.Rent(100_000);
        Thread t = new(() =>
        {
            pool.Return(a);
            pool.Return(b);
            pool.Return(c); // a third is not kept
        });
        t.Start();
        t.Join();
        var again = new HashSet<byte[]>(ReferenceEqualityComparer.Instance) { pool.Rent(100_000), pool.Rent(100_000) };
        Assert.True(again.SetEquals(new[] { a, b }) || again.SetEquals(new[] { b, c }) || again.SetEquals(new[] { a, c }));
        Assert.DoesNotContain(pool.Rent(100_000), new[] { a, b, c });
        Assert.NotSame(a, pool.Rent(200_000)); // another size
    }

    [Fact]
    public void A_block_larger_than_the_largest_size_is_made_to_length_and_not_kept()
    {
        var pool = new BlockPool(2);
        byte[] big = pool.Rent(20 * 1024 * 1024);
        Assert.Equal(20 * 1024 * 1024, big.Length);
        pool.Return(big);
        pool.Return(new byte[100_000]); // not a pool size
        Assert.NotSame(big, pool.Rent(20 * 1024 * 1024));
        Assert.NotEqual(100_000, pool.Rent(100_000).Length);
    }
}
