package io.kvslab.tier;

import io.lettuce.core.AbstractRedisClient;
import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SetArgs;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulConnection;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.cluster.ClusterClientOptions;
import io.lettuce.core.cluster.ClusterTopologyRefreshOptions;
import io.lettuce.core.cluster.RedisClusterClient;
import io.lettuce.core.cluster.api.StatefulRedisClusterConnection;
import io.lettuce.core.cluster.api.async.RedisAdvancedClusterAsyncCommands;
import io.lettuce.core.cluster.api.async.RedisClusterAsyncCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.resource.ClientResources;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;

/**
 * Everything that touches Lettuce, so that {@link RedisTier} itself loads without it (and can say it is missing).
 *
 * <p>One connection: Lettuce connections are thread-safe and pipeline the commands of all callers on one socket,
 * so a batch of gets goes out back to back and its replies are awaited together. For a Redis Cluster
 * ({@code redis-cluster://} seeds) the connection is Lettuce's cluster connection: it learns the slot map from the
 * seeds, sends each key's command to the master of its slot (one pipelined socket per node) and follows
 * {@code MOVED} / {@code ASK} redirections; the topology is refreshed every 30 s and on redirections and
 * reconnects, so a resharded or failed-over cluster is followed without a restart. Commands are rejected at once
 * while the connection is down (no unbounded buffering) and time out on the client after the configured timeout;
 * a connection that drops reconnects in the background (Lettuce's watchdog). A connection that could not be
 * made at all is retried, at most once a second, by the calls that find it missing; they do not wait for it.
 */
final class LettuceBackend implements AutoCloseable {
    /** Calls fail with this when Redis did not answer in time, refused, or is not connected. */
    static final class CallFailed extends Exception {
        CallFailed(String message, Throwable cause) {
            super(message, cause, false, false);
        }
    }

    private static final long RECONNECT_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(1);
    /**
     * Floor of the connect timeout: a first connection in a cold JVM loads Netty and Lettuce (hundreds of ms on a
     * busy machine), which would otherwise fail a short call timeout every time. Only {@link RedisTier#connect}
     * and the background reconnects wait for it, never a get or put.
     */
    static final Duration MIN_CONNECT_TIMEOUT = Duration.ofSeconds(5);
    /** Commands waiting for a reply at most, per connection: past it Lettuce rejects new ones (bounded memory). */
    private static final int REQUEST_QUEUE = 4096;
    /** Requests of one batch in flight at a time: a quarter of the queue, which other callers share. */
    static final int PIPELINE_WINDOW = REQUEST_QUEUE / 4;

    /** Slot map refresh of a cluster connection besides the adaptive (redirection, reconnect) triggers. */
    private static final Duration TOPOLOGY_REFRESH = Duration.ofSeconds(30);

    private final ClientResources resources;
    private final AbstractRedisClient client;
    private final RedisClient single;
    private final RedisClusterClient cluster;
    private final RedisURI uri;
    private final String where;
    private final long timeoutNanos;
    private final long ttlMillis;
    private volatile StatefulConnection<byte[], byte[]> connection;
    private volatile CompletableFuture<? extends StatefulConnection<byte[], byte[]>> connecting;
    private volatile long lastAttemptNanos;
    private volatile boolean closed;

    LettuceBackend(RedisTierConfig config) {
        this.timeoutNanos = config.timeout().toNanos();
        this.ttlMillis = config.ttl().toMillis();
        // Two I/O and two computation threads (Lettuce's minimum): a tier moves bytes, it needs no more.
        this.resources = ClientResources.builder().ioThreadPoolSize(2).computationThreadPoolSize(2).build();
        Duration connectTimeout = config.timeout().compareTo(MIN_CONNECT_TIMEOUT) > 0 ? config.timeout() : MIN_CONNECT_TIMEOUT;
        SocketOptions socket = SocketOptions.builder().connectTimeout(connectTimeout).keepAlive(true).build();
        // Both clients: reconnect, reject (not queue) while disconnected, bounded queue, per-call timeout.
        ClientOptions options = ClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .requestQueueSize(REQUEST_QUEUE)
                .socketOptions(socket)
                .timeoutOptions(TimeoutOptions.enabled(config.timeout()))
                .build();
        List<String> seeds = RedisTierConfig.clusterSeeds(config.uri());
        if (seeds == null) {
            this.uri = RedisURI.create(config.uri());
            uri.setTimeout(config.timeout());
            this.where = uri.getHost() + ":" + uri.getPort();
            this.single = RedisClient.create(resources, uri);
            this.cluster = null;
            single.setOptions(options);
            this.client = single;
        } else {
            List<RedisURI> uris = new ArrayList<>(seeds.size());
            for (String seed : seeds) {
                RedisURI u = RedisURI.create(seed);
                u.setTimeout(config.timeout());
                uris.add(u);
            }
            this.uri = uris.get(0);
            this.where = "the Redis Cluster of " + String.join(",", seeds);
            this.single = null;
            this.cluster = RedisClusterClient.create(resources, uris);
            cluster.setOptions(ClusterClientOptions.builder(options)
                    .topologyRefreshOptions(ClusterTopologyRefreshOptions.builder()
                            .enablePeriodicRefresh(TOPOLOGY_REFRESH)
                            .enableAdaptiveRefreshTrigger(
                                    ClusterTopologyRefreshOptions.RefreshTrigger.MOVED_REDIRECT,
                                    ClusterTopologyRefreshOptions.RefreshTrigger.ASK_REDIRECT,
                                    ClusterTopologyRefreshOptions.RefreshTrigger.PERSISTENT_RECONNECTS,
                                    ClusterTopologyRefreshOptions.RefreshTrigger.UNCOVERED_SLOT,
                                    ClusterTopologyRefreshOptions.RefreshTrigger.UNKNOWN_NODE)
                            .build())
                    .build());
            this.client = cluster;
        }
        // The first connect waits (bounded by the connect timeout) so that a tier opened against a running server is
        // usable at once; a server that is down (refused at once) or unreachable only makes the tier start
        // disconnected.
        startConnect();
        try {
            connecting.get(connectTimeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            // stays disconnected; the next calls retry
        }
    }

    boolean connected() {
        StatefulConnection<byte[], byte[]> c = connection;
        return c != null && c.isOpen();
    }

    private synchronized void startConnect() {
        if (closed || connection != null || (connecting != null && !connecting.isDone())) {
            return;
        }
        lastAttemptNanos = System.nanoTime();
        // connecting completes after the connection is published, so a caller that waited on it sees it
        // a cluster connection needs the slot map first: asked of the seeds (any one that answers), then connect
        CompletableFuture<? extends StatefulConnection<byte[], byte[]>> attempt = cluster != null
                ? cluster.refreshPartitionsAsync().toCompletableFuture()
                        .thenCompose(v -> cluster.connectAsync(ByteArrayCodec.INSTANCE))
                        .thenCompose(LettuceBackend::connectMasters)
                : single.connectAsync(ByteArrayCodec.INSTANCE, uri).toCompletableFuture();
        connecting = attempt.whenComplete((c, error) -> {
            if (c == null) {
                return;
            }
            synchronized (this) {
                if (closed || connection != null) {
                    c.closeAsync();
                } else {
                    connection = c;
                }
            }
        });
    }

    /**
     * Opens the cluster connection's link to every master before the connection is used. Lettuce opens them lazily,
     * and with commands rejected while a link is not connected (no unbounded buffering), the first batch of gets
     * sent to a master would otherwise fail as a whole. A master that cannot be reached now does not fail the
     * connection: its link is retried by the first command for its slots.
     */
    private static CompletableFuture<StatefulRedisClusterConnection<byte[], byte[]>> connectMasters(
            StatefulRedisClusterConnection<byte[], byte[]> c) {
        List<CompletableFuture<?>> links = new ArrayList<>();
        for (io.lettuce.core.cluster.models.partitions.RedisClusterNode node : c.getPartitions()) {
            if (node.is(io.lettuce.core.cluster.models.partitions.RedisClusterNode.NodeFlag.UPSTREAM)) {
                links.add(c.getConnectionAsync(node.getUri().getHost(), node.getUri().getPort())
                        .exceptionally(e -> null));
            }
        }
        return CompletableFuture.allOf(links.toArray(CompletableFuture[]::new)).thenApply(v -> c);
    }

    /** The commands of the connection: one node's, or the cluster's (routed by slot); both pipeline. */
    private RedisClusterAsyncCommands<byte[], byte[]> commands() throws CallFailed {
        StatefulConnection<byte[], byte[]> c = connection;
        if (c instanceof StatefulRedisClusterConnection<byte[], byte[]> cc) {
            return cc.async();
        }
        if (c instanceof StatefulRedisConnection<byte[], byte[]> sc) {
            return sc.async();
        }
        if (System.nanoTime() - lastAttemptNanos >= RECONNECT_INTERVAL_NANOS) {
            startConnect();
        }
        throw new CallFailed("not connected to " + where, null);
    }

    /** The value, or null when the key is absent. */
    byte[] get(byte[] key) throws CallFailed {
        return await(commands().get(key), System.nanoTime() + timeoutNanos);
    }

    /** The values (null where absent), pipelined ({@link #pipelined}) within one timeout. */
    List<byte[]> getAll(List<byte[]> keys) throws CallFailed {
        RedisClusterAsyncCommands<byte[], byte[]> cmds = commands();
        return pipelined(keys, cmds::get);
    }

    /**
     * Deletes {@code keys}, pipelined ({@link #pipelined}) within one timeout: a paused server costs one timeout for
     * the whole batch, not one per key. Returns how many existed.
     */
    long deleteAll(List<byte[]> keys) throws CallFailed {
        RedisClusterAsyncCommands<byte[], byte[]> cmds = commands();
        long deleted = 0;
        for (Long n : pipelined(keys, k -> cmds.del(k))) {
            deleted += n == null ? 0 : n;
        }
        return deleted;
    }

    /**
     * {@code command} of every key, in order, pipelined in windows of {@link #PIPELINE_WINDOW} requests (each window
     * sent before its first reply is awaited), all within one timeout. The window keeps a large batch under the
     * connection's request queue ({@link #REQUEST_QUEUE}, shared with other callers), which refuses a whole batch
     * beyond it. On the first failure the window's other requests are cancelled and the call fails.
     */
    private <T> List<T> pipelined(List<byte[]> keys, Function<byte[], RedisFuture<T>> command) throws CallFailed {
        long deadline = System.nanoTime() + timeoutNanos;
        List<T> out = new ArrayList<>(keys.size());
        List<RedisFuture<T>> window = new ArrayList<>(Math.min(keys.size(), PIPELINE_WINDOW));
        for (int from = 0; from < keys.size(); from += PIPELINE_WINDOW) {
            window.clear();
            for (int i = from; i < Math.min(keys.size(), from + PIPELINE_WINDOW); i++) {
                window.add(command.apply(keys.get(i)));
            }
            for (int i = 0; i < window.size(); i++) {
                try {
                    out.add(await(window.get(i), deadline));
                } catch (CallFailed e) {
                    for (int j = i + 1; j < window.size(); j++) {
                        window.get(j).cancel(false);
                    }
                    throw e;
                }
            }
        }
        return out;
    }

    void set(byte[] key, byte[] value) throws CallFailed {
        RedisClusterAsyncCommands<byte[], byte[]> cmds = commands();
        RedisFuture<String> f = ttlMillis > 0 ? cmds.set(key, value, SetArgs.Builder.px(ttlMillis)) : cmds.set(key, value);
        String reply = await(f, System.nanoTime() + timeoutNanos);
        if (!"OK".equals(reply)) {
            throw new CallFailed("SET answered " + reply, null);
        }
    }

    boolean delete(byte[] key) throws CallFailed {
        Long n = await(commands().del(key), System.nanoTime() + timeoutNanos);
        return n != null && n > 0;
    }

    /**
     * {@code INFO memory}'s used_memory, or -1 when the server does not say; of a cluster, the sum over its masters
     * (each asked at once, all within one timeout).
     */
    long usedMemory() throws CallFailed {
        long deadline = System.nanoTime() + timeoutNanos;
        RedisClusterAsyncCommands<byte[], byte[]> cmds = commands();
        if (!(cmds instanceof RedisAdvancedClusterAsyncCommands<byte[], byte[]> all)) {
            return usedMemory(await(cmds.info("memory"), deadline));
        }
        long sum = 0;
        for (CompletableFuture<String> f : all.upstream().commands().info("memory")) {
            long m;
            try {
                m = usedMemory(f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
            } catch (TimeoutException | ExecutionException | RuntimeException e) {
                throw new CallFailed("INFO memory of a cluster master failed: " + e, e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CallFailed("interrupted", e);
            }
            if (m < 0) {
                return -1;
            }
            sum += m;
        }
        return sum;
    }

    private static long usedMemory(String info) {
        for (String line : info.split("\r?\n")) {
            if (line.startsWith("used_memory:")) {
                return Long.parseLong(line.substring("used_memory:".length()).trim());
            }
        }
        return -1;
    }

    private <T> T await(RedisFuture<T> f, long deadlineNanos) throws CallFailed {
        try {
            return f.get(Math.max(0, deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            f.cancel(false);
            throw new CallFailed("no reply within " + Duration.ofNanos(timeoutNanos).toMillis() + " ms", e);
        } catch (ExecutionException e) {
            throw new CallFailed(String.valueOf(e.getCause()), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            f.cancel(false);
            throw new CallFailed("interrupted", e);
        } catch (RuntimeException e) {
            throw new CallFailed(e.toString(), e);
        }
    }

    @Override
    public void close() {
        StatefulConnection<byte[], byte[]> c;
        synchronized (this) {
            closed = true;
            c = connection;
            connection = null;
        }
        try {
            if (c != null) {
                c.close();
            }
        } finally {
            client.shutdown(Duration.ZERO, Duration.ofSeconds(2));
            resources.shutdown(0, 2, TimeUnit.SECONDS);
        }
    }
}
