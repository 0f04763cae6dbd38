package io.kvslab;

import io.kvslab.KvArgumentException;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Bitwise access to the stored blocks of a sequence, for snapshots and migration ({@code io.kvslab.snapshot}).
 * Unlike {@link Sequence#readKeys}, nothing is converted: rows are copied in the stored dtype, byte for byte.
 * Restoring goes through {@link #stage}, which validates a whole image before any sequence sees a block.
 */
public final class RawBlocks {
    private RawBlocks() {}

    /**
     * Identities of the K ({@code keys}) or V blocks of one (layer, KV head), in table order. Equal values name
     * the same physical block: a block shared by forks, with a prefix cache, or (later) across layers. The values
     * are opaque; they stay valid while the block is referenced.
     */
    public static long[] blockIds(Sequence s, int layer, int kvHead, boolean keys) {
        ReentrantReadWriteLock.ReadLock lock = s.store.enter();
        try {
            s.checkOpen();
            s.checkHead(layer, kvHead);
            HeadRows hr = s.heads[layer][kvHead];
            return Arrays.copyOf(keys ? hr.keyBlocks : hr.valueBlocks, hr.blockCount);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Copies the first {@code rows} rows of block {@code block} of one (layer, KV head), raw, into
     * {@code dst[off .. off + rows * rowBytes)}.
     *
     * @param rows in {@code [1, r]} where r is the number of rows this table stores in that block
     */
    public static void readRows(Sequence s, int layer, int kvHead, boolean keys, int block, int rows, byte[] dst,
                                int off) {
        ReentrantReadWriteLock.ReadLock lock = s.store.enter();
        try {
            s.checkOpen();
            s.checkHead(layer, kvHead);
            HeadRows hr = s.heads[layer][kvHead];
            if (block < 0 || block >= hr.blockCount) {
                throw new KvArgumentException("block must be in [0, " + hr.blockCount + ") for layer " + layer
                        + ", KV head " + kvHead + ", got " + block);
            }
            int stored = Math.min(s.tokensPerBlock, hr.length - block * s.tokensPerBlock);
            if (rows < 1 || rows > stored) {
                throw new KvArgumentException("rows must be in [1, " + stored + "] for block " + block
                        + " of layer " + layer + ", KV head " + kvHead + ", got " + rows);
            }
            long bytes = rows * s.rowBytes;
            if (dst == null || off < 0 || off + bytes > dst.length) {
                throw new KvArgumentException("dst must hold " + bytes + " bytes from offset " + off + ", got "
                        + (dst == null ? "null" : dst.length + " bytes"));
            }
            MemorySegment seg = s.allocator.segment(keys ? hr.keyBlocks[block] : hr.valueBlocks[block]);
            MemorySegment.copy(seg, 0, MemorySegment.ofArray(dst), off, bytes);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Allocates {@code blocks} blocks for a restore, all or nothing (memory-pressure handlers may run first).
     * Fill them with {@link BlockStaging#write}, hand them to sequences with {@link BlockStaging#commit} and
     * close the staging: blocks no sequence took are freed, so an abandoned restore leaves nothing behind.
     */
    public static BlockStaging stage(KvStore store, int blocks) {
        if (blocks < 0) {
            throw new KvArgumentException("blocks must be >= 0, got " + blocks);
        }
        ReentrantReadWriteLock.ReadLock lock = store.enter();
        try {
            long[] handles = new long[blocks];
            for (int attempt = 1; !store.tryAllocate(null, handles, attempt); attempt++) {
                // a pressure handler freed memory: try again
            }
            return new BlockStaging(store, handles);
        } finally {
            lock.unlock();
        }
    }
}
