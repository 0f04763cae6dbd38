package io.kvslab.tier;

import io.lettuce.core.ClientOptions;
import io.lettuce.core.RedisClient;
import io.lettuce.core.RedisFuture;
import io.lettuce.core.RedisURI;
import io.lettuce.core.SetArgs;
import io.lettuce.core.SocketOptions;
import io.lettuce.core.TimeoutOptions;
import io.lettuce.core.api.StatefulRedisConnection;
import io.lettuce.core.api.async.RedisAsyncCommands;
import io.lettuce.core.codec.ByteArrayCodec;
import io.lettuce.core.resource.ClientResources;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Everything that touches Lettuce, so that {@link RedisTier} itself loads without it (and can say it is missing).
 *
 * <p>One connection: Lettuce connections are thread-safe and pipeline the commands of all callers on one socket,
 * so a batch of gets goes out back to back and its replies are awaited together. Commands are rejected at once
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

    private final ClientResources resources;
    private final RedisClient client;
    private final RedisURI uri;
    private final long timeoutNanos;
    private final long ttlMillis;
    private volatile StatefulRedisConnection<byte[], byte[]> connection;
    private volatile CompletableFuture<StatefulRedisConnection<byte[], byte[]>> connecting;
    private volatile long lastAttemptNanos;
    private volatile boolean closed;

    LettuceBackend(RedisTierConfig config) {
        this.timeoutNanos = config.timeout().toNanos();
        this.ttlMillis = config.ttl().toMillis();
        this.uri = RedisURI.create(config.uri());
        uri.setTimeout(config.timeout());
        // Two I/O and two computation threads (Lettuce's minimum): a tier moves bytes, it needs no more.
        this.resources = ClientResources.builder().ioThreadPoolSize(2).computationThreadPoolSize(2).build();
        Duration connectTimeout = config.timeout().compareTo(MIN_CONNECT_TIMEOUT) > 0 ? config.timeout() : MIN_CONNECT_TIMEOUT;
        this.client = RedisClient.create(resources, uri);
        client.setOptions(ClientOptions.builder()
                .autoReconnect(true)
                .disconnectedBehavior(ClientOptions.DisconnectedBehavior.REJECT_COMMANDS)
                .requestQueueSize(REQUEST_QUEUE)
                .socketOptions(SocketOptions.builder().connectTimeout(connectTimeout).keepAlive(true).build())
                .timeoutOptions(TimeoutOptions.enabled(config.timeout()))
                .build());
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
        StatefulRedisConnection<byte[], byte[]> c = connection;
        return c != null && c.isOpen();
    }

    private synchronized void startConnect() {
        if (closed || connection != null || (connecting != null && !connecting.isDone())) {
            return;
        }
        lastAttemptNanos = System.nanoTime();
        // connecting completes after the connection is published, so a caller that waited on it sees it
        connecting = client.connectAsync(ByteArrayCodec.INSTANCE, uri).toCompletableFuture().whenComplete((c, error) -> {
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

    private RedisAsyncCommands<byte[], byte[]> commands() throws CallFailed {
        StatefulRedisConnection<byte[], byte[]> c = connection;
        if (c != null) {
            return c.async();
        }
        if (System.nanoTime() - lastAttemptNanos >= RECONNECT_INTERVAL_NANOS) {
            startConnect();
        }
        throw new CallFailed("not connected to " + uri.getHost() + ":" + uri.getPort(), null);
    }

    /** The value, or null when the key is absent. */
    byte[] get(byte[] key) throws CallFailed {
        return await(commands().get(key), System.nanoTime() + timeoutNanos);
    }

    /** The values (null where absent), pipelined: all requests are sent before the first reply is awaited. */
    List<byte[]> getAll(List<byte[]> keys) throws CallFailed {
        RedisAsyncCommands<byte[], byte[]> cmds = commands();
        long deadline = System.nanoTime() + timeoutNanos;
        List<RedisFuture<byte[]>> futures = new ArrayList<>(keys.size());
        for (byte[] k : keys) {
            futures.add(cmds.get(k));
        }
        List<byte[]> out = new ArrayList<>(keys.size());
        for (int i = 0; i < futures.size(); i++) {
            try {
                out.add(await(futures.get(i), deadline));
            } catch (CallFailed e) {
                for (int j = i + 1; j < futures.size(); j++) {
                    futures.get(j).cancel(false);
                }
                throw e;
            }
        }
        return out;
    }

    void set(byte[] key, byte[] value) throws CallFailed {
        RedisAsyncCommands<byte[], byte[]> cmds = commands();
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

    /** {@code INFO memory}'s used_memory, or -1 when the server does not say. */
    long usedMemory() throws CallFailed {
        String info = await(commands().info("memory"), System.nanoTime() + timeoutNanos);
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
        StatefulRedisConnection<byte[], byte[]> c;
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
