using PSBackup.Engine.Repository;
using Xunit;

namespace PSBackup.Engine.Tests.Repository;

/// <summary>The write path's pool of large blocks: one free list per power-of-two size, shared by
/// every thread, a bounded number and total kept, all let go once idle.</summary>
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
        Assert.Equal(expected, new BlockPool(2, 64 << 20).Rent(length).Length);
    }

    [Fact]
    public void A_block_returned_on_one_thread_is_rented_on_another_and_only_so_many_are_kept()
    {
        var pool = new BlockPool(2, 64 << 20);
        byte[] a = pool.Rent(100_000), b = pool.Rent(100_000), c = pool.Rent(100_000);
        var t = new Thread(() =>
        {
            pool.Return(a);
            pool.Return(b);
            pool.Return(c); // a third of the size is not kept
        });
        t.Start();
        t.Join();

        byte[] first = pool.Rent(100_000), second = pool.Rent(100_000), third = pool.Rent(100_000);
        Assert.Same(b, first);
        Assert.Same(a, second);
        Assert.NotSame(c, third);
        Assert.NotSame(a, third);
        Assert.NotSame(b, third);

        pool.Return(first);
        byte[] larger = pool.Rent(200_000); // another size: not the 128 KiB block just returned
        Assert.NotSame(first, larger);
        Assert.Equal(1 << 18, larger.Length);
        Assert.Same(first, pool.Rent(70_000));
    }

    [Fact]
    public void Blocks_beyond_the_total_are_not_kept()
    {
        var pool = new BlockPool(8, 3 << 16); // room for three 64 KiB blocks
        byte[][] blocks = Enumerable.Range(0, 4).Select(_ => pool.Rent(1 << 16)).ToArray();
        foreach (byte[] block in blocks)
        {
            pool.Return(block);
        }
        var again = Enumerable.Range(0, 4).Select(_ => pool.Rent(1 << 16)).ToArray();
        Assert.Equal(3, again.Count(x => blocks.Contains(x, ReferenceEqualityComparer.Instance)));
    }

    [Fact]
    public void Sizes_outside_the_pool_are_made_to_length_and_never_kept()
    {
        var pool = new BlockPool(2, 256 << 20);
        byte[] big = pool.Rent(32 * 1024 * 1024 + 1);
        Assert.Equal(32 * 1024 * 1024 + 1, big.Length);
        pool.Return(big);
        byte[] pow2Big = new byte[32 * 1024 * 1024]; // a power of two above the largest size
        pool.Return(pow2Big);
        Assert.NotSame(pow2Big, pool.Rent(32 * 1024 * 1024));

        byte[] odd = new byte[1 << 17 | 1]; // not a power of two
        pool.Return(odd);
        byte[] small = new byte[1 << 15]; // below the smallest size
        pool.Return(small);
        Assert.NotSame(odd, pool.Rent(1 << 17));
        Assert.NotSame(small, pool.Rent(1 << 15));
    }

    [Fact]
    public void Trimming_lets_every_kept_block_go()
    {
        var pool = new BlockPool(4, 64 << 20);
        byte[] block = pool.Rent(1 << 20);
        pool.Return(block);
        pool.Trim();
        Assert.NotSame(block, pool.Rent(1 << 20));
    }
}
