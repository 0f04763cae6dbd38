package io.kvslab.tier;

import io.kvslab.ClosedException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;
import io.kvslab.internal.jfr.Jfr;
import io.kvslab.internal.jfr.TierEvent;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * A {@link BlockTier} on a Redis server (Redis 6 or later) or a Redis Cluster ({@code redis-cluster://} seeds in
 * {@link RedisTierConfig#uri()}): each record is one binary string value under {@code keyPrefix + key.hex()},
 * written with {@code SET} (with {@code PX ttl} when a TTL is configured) and read with {@code GET}. In a cluster
 * each key lives on the master of its hash slot, so a prompt's blocks spread over the masters (no hash tags: a
 * prompt's blocks are meant to spread) and a batch of gets goes to every master holding one of them, pipelined
 * per node. Eviction and expiry are the server's job ({@code maxmemory},
 * {@code maxmemory-policy allkeys-lru}, the TTL); see docs/distributed.md for the settings.
 *
 * <p>Client: Lettuce, an optional dependency of kvslab-core, on one pipelined connection. Every call returns within
 * the configured timeout: an unreachable, paused, full or restarting server turns into {@code false} or a miss,
 * counted in {@link #stats()}, never an exception or a longer wait. Values are not interpreted here: the caller
 * verifies each record (format, layout fingerprint, positions, CRC32C) before use.
 */
public final class RedisTier implements BlockTier {
    static final String LETTUCE_CLASS = "io.lettuce.core.RedisClient";

    private final RedisTierConfig config;
    private final LettuceBackend backend;
    private final byte[] prefix;
    private final LongAdder puts = new LongAdder();
    private final LongAdder putFailures = new LongAdder();
    private final LongAdder hits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    private final LongAdder getFailures = new LongAdder();
    private final LongAdder removes = new LongAdder();
    private final LongAdder bytesWritten = new LongAdder();
    private final LongAdder bytesRead = new LongAdder();
    private volatile boolean closed;

    private RedisTier(RedisTierConfig config, LettuceBackend backend) {
        this.config = config;
        this.backend = backend;
        this.prefix = config.keyPrefix().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Opens a tier on {@code config.uri()}. Waits for the first connection at most the configured timeout or 5 s,
     * whichever is longer (a cold JVM loads the client's classes on the first connect); a server
     * that is down or slow does not make this fail: the tier starts disconnected, its calls miss, and it keeps
     * trying to connect (at most once a second, without blocking its callers).
     *
     * @param config the server address, key prefix, timeout and record TTL
     * @return the tier; close it when done
     * @throws KvSlabException if Lettuce (io.lettuce:lettuce-core) or its dependencies (Netty, Reactor) are not on
     *         the path; the message names the missing class and the dependency to add. Thrown before any
     *         connection is attempted.
     * @throws KvArgumentException if {@code config} is null
     */
    public static RedisTier connect(RedisTierConfig config) {
        if (config == null) {
            throw new KvArgumentException("the Redis tier config must not be null");
        }
        requireLettuce();
        try {
            return new RedisTier(config, new LettuceBackend(config));
        } catch (NoClassDefFoundError e) {
            throw missing(e);
        }
    }

    /** Throws a {@link KvSlabException} naming the jar unless Lettuce and the Netty and Reactor jars it needs load. */
    static void requireLettuce() {
        ClassLoader loader = RedisTier.class.getClassLoader();
        for (String c : List.of(LETTUCE_CLASS, "io.netty.channel.Channel", "reactor.core.publisher.Mono")) {
            try {
                Class.forName(c, false, loader);
            } catch (ClassNotFoundException | LinkageError e) {
                throw missing(e);
            }
        }
    }

    private static KvSlabException missing(Throwable e) {
        return new KvSlabException("the Redis tier needs Lettuce, an optional dependency of kvslab-core: "
                + "add io.lettuce:lettuce-core (7.7.0.RELEASE, which brings Netty 4.2 and Reactor) to the "
                + "application's dependencies (on the module path also --add-modules lettuce.core); missing: "
                + e.getMessage(), e);
    }

    @Override
    public String name() {
        return "redis";
    }

    /**
     * The configuration this tier was opened with.
     *
     * @return the configuration given to {@link #connect}
     */
    public RedisTierConfig config() {
        return config;
    }

    /**
     * Whether the tier has a live connection now (it reconnects by itself after a drop).
     *
     * @return {@code true} if connected now
     */
    public boolean connected() {
        return backend.connected();
    }

    /**
     * The Redis key of a block: the key prefix and the block key's 32 hex digits.
     *
     * @param key the block key
     * @return the Redis key string
     */
    public String redisKey(BlockKey key) {
        return config.keyPrefix() + checkKey(key).hex();
    }

    @Override
    public boolean put(BlockKey key, byte[] record) {
        checkOpen();
        byte[] k = keyBytes(checkKey(key));
        if (record == null) {
            throw new KvArgumentException("record must not be null");
        }
        long t0 = System.nanoTime();
        try {
            backend.set(k, record);
            puts.increment();
            bytesWritten.add(record.length);
            event("put", 1, record.length, true, t0, null);
            return true;
        } catch (LettuceBackend.CallFailed | RuntimeException e) {
            putFailures.increment();
            event("put", 1, 0, false, t0, e.getMessage());
            return false;
        }
    }

    @Override
    public Optional<byte[]> get(BlockKey key) {
        checkOpen();
        byte[] k = keyBytes(checkKey(key));
        long t0 = System.nanoTime();
        try {
            byte[] v = backend.get(k);
            count(v);
            event("get", 1, v == null ? 0 : v.length, true, t0, null);
            return Optional.ofNullable(v);
        } catch (LettuceBackend.CallFailed | RuntimeException e) {
            getFailures.increment();
            event("get", 1, 0, false, t0, e.getMessage());
            return Optional.empty();
        }
    }

    /**
     * The values of {@code keys} in order, fetched as one pipeline (all requests sent before the first reply is
     * awaited) within one timeout; on a failure every element is empty and each key counts as a failed get.
     */
    @Override
    public List<Optional<byte[]>> getAll(List<BlockKey> keys) {
        checkOpen();
        List<byte[]> ks = keyBytes(keys);
        List<Optional<byte[]>> out = new ArrayList<>(keys.size());
        if (keys.isEmpty()) {
            return out;
        }
        long t0 = System.nanoTime();
        try {
            long bytes = 0;
            for (byte[] v : backend.getAll(ks)) {
                count(v);
                bytes += v == null ? 0 : v.length;
                out.add(Optional.ofNullable(v));
            }
            event("getAll", keys.size(), bytes, true, t0, null);
        } catch (LettuceBackend.CallFailed | RuntimeException e) {
            getFailures.add(keys.size());
            out.clear();
            for (int i = 0; i < keys.size(); i++) {
                out.add(Optional.empty());
            }
            event("getAll", keys.size(), 0, false, t0, e.getMessage());
        }
        return out;
    }

    @Override
    public boolean remove(BlockKey key) {
        checkOpen();
        byte[] k = keyBytes(checkKey(key));
        try {
            boolean removed = backend.delete(k);
            if (removed) {
                removes.increment();
            }
            return removed;
        } catch (LettuceBackend.CallFailed | RuntimeException e) {
            return false;
        }
    }

    /** The Redis keys of {@code keys}, each checked; a null list is refused. */
    private List<byte[]> keyBytes(List<BlockKey> keys) {
        if (keys == null) {
            throw new KvArgumentException("keys must not be null");
        }
        List<byte[]> ks = new ArrayList<>(keys.size());
        for (BlockKey key : keys) {
            ks.add(keyBytes(checkKey(key)));
        }
        return ks;
    }

    /**
     * Removes {@code keys} as one pipeline within one timeout (a paused server costs one timeout for the batch,
     * not one per key); on a failure the rest are left (a configured TTL expires them).
     */
    @Override
    public long removeAll(List<BlockKey> keys) {
        checkOpen();
        List<byte[]> ks = keyBytes(keys);
        if (ks.isEmpty()) {
            return 0;
        }
        try {
            long removed = backend.deleteAll(ks);
            removes.add(removed);
            return removed;
        } catch (LettuceBackend.CallFailed | RuntimeException e) {
            return 0;
        }
    }

    /**
     * The server's {@code used_memory} (INFO memory; of a cluster, the sum over its masters), or empty when it
     * cannot be asked now.
     *
     * @return bytes used by the server (or the cluster's masters), or empty
     */
    public OptionalLong serverUsedMemory() {
        checkOpen();
        try {
            long m = backend.usedMemory();
            return m < 0 ? OptionalLong.empty() : OptionalLong.of(m);
        } catch (LettuceBackend.CallFailed | RuntimeException e) {
            return OptionalLong.empty();
        }
    }

    @Override
    public TierStats stats() {
        return new TierStats(puts.sum(), putFailures.sum(), hits.sum(), misses.sum(), getFailures.sum(),
                removes.sum(), bytesWritten.sum(), bytesRead.sum(), -1);
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        backend.close();
    }

    private void count(byte[] v) {
        if (v == null) {
            misses.increment();
        } else {
            hits.increment();
            bytesRead.add(v.length);
        }
    }

    private byte[] keyBytes(BlockKey key) {
        byte[] hex = key.hex().getBytes(StandardCharsets.US_ASCII);
        byte[] k = new byte[prefix.length + hex.length];
        System.arraycopy(prefix, 0, k, 0, prefix.length);
        System.arraycopy(hex, 0, k, prefix.length, hex.length);
        return k;
    }

    private static BlockKey checkKey(BlockKey key) {
        if (key == null) {
            throw new KvArgumentException("key must not be null");
        }
        return key;
    }

    private void checkOpen() {
        if (closed) {
            throw new ClosedException("Redis tier");
        }
    }

    private void event(String op, int keys, long bytes, boolean ok, long t0, String failure) {
        if (!Jfr.recording()) {
            return;
        }
        TierEvent e = new TierEvent();
        if (e.isEnabled()) {
            e.tier = "redis";
            e.operation = op;
            e.keys = keys;
            e.bytes = bytes;
            e.ok = ok;
            e.failure = failure;
            e.nanos = System.nanoTime() - t0;
            e.commit();
        }
    }
}
