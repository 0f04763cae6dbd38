package io.kvslab.tier;

import io.kvslab.KvArgumentException;

import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * How a {@link RedisTier} reaches its server.
 *
 * @param uri       {@code redis://[user:password@]host[:port][/database]} (TLS: {@code rediss://}) for one server,
 *                  or {@code redis-cluster://host:port[,host:port...]} for a Redis Cluster: the seed nodes the
 *                  client learns the slot map from (any reachable master or replica will do; keys are then sent to
 *                  the master of their slot)
 * @param timeout   the longest any one call (a get, a batch of gets, a put, a connect attempt) waits; a call that
 *                  takes longer counts as a failure and returns a miss or {@code false}
 * @param keyPrefix prepended to every key's 32 hex digits (namespaces one fleet's blocks in a shared Redis)
 * @param ttl       expiry set on every stored value; {@link Duration#ZERO} for none (then eviction is left to the
 *                  server's {@code maxmemory-policy})
 */
public record RedisTierConfig(String uri, Duration timeout, String keyPrefix, Duration ttl) {
    /** Timeout of {@link #of(String)}: long enough for a loopback or same-rack round trip of a few MiB. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofMillis(250);
    /** Key prefix of {@link #of(String)}. */
    public static final String DEFAULT_PREFIX = "kvslab:";
    /** The scheme of a Redis Cluster URI: the seeds follow, comma separated. */
    static final String CLUSTER_SCHEME = "redis-cluster://";

    /**
     * Checks the values.
     *
     * @throws KvArgumentException if the URI is null, not {@code redis://} or {@code rediss://} with a host, nor
     *         {@code redis-cluster://} with {@code host:port} seeds; the timeout is not in {@code (0, 10 min]}; the
     *         prefix is null or longer than 256 characters; or the TTL is null or negative
     */
    public RedisTierConfig {
        if (uri == null) {
            throw new KvArgumentException("the Redis URI must not be null");
        }
        if (uri.startsWith(CLUSTER_SCHEME)) {
            clusterSeeds(uri);   // validates
        } else {
            checkServerUri(uri);
        }
        if (timeout == null || timeout.isNegative() || timeout.isZero() || timeout.compareTo(Duration.ofMinutes(10)) > 0) {
            throw new KvArgumentException("the Redis timeout must be in (0, 10 min], got " + timeout);
        }
        if (keyPrefix == null || keyPrefix.length() > 256) {
            throw new KvArgumentException("the Redis key prefix must be non-null and at most 256 characters");
        }
        if (ttl == null || ttl.isNegative()) {
            throw new KvArgumentException("the Redis TTL must be >= 0 (0 = none), got " + ttl);
        }
    }

    private static void checkServerUri(String uri) {
        URI parsed;
        try {
            parsed = new URI(uri);
        } catch (URISyntaxException e) {
            throw new KvArgumentException("not a Redis URI: '" + uri + "' (" + e.getReason()
                    + "); expected redis://host:port[/db]");
        }
        if (!"redis".equals(parsed.getScheme()) && !"rediss".equals(parsed.getScheme())) {
            throw new KvArgumentException("a Redis URI starts with redis://, rediss:// or redis-cluster://, got '"
                    + uri + "'");
        }
        if (parsed.getHost() == null || parsed.getHost().isEmpty()) {
            throw new KvArgumentException("the Redis URI '" + uri + "' names no host; expected redis://host:port");
        }
    }

    /**
     * The seeds of a {@code redis-cluster://} URI as {@code redis://host:port} URIs, or null for any other URI.
     *
     * @throws KvArgumentException if the cluster URI names no seed or a seed is not {@code host:port}
     */
    static List<String> clusterSeeds(String uri) {
        if (!uri.startsWith(CLUSTER_SCHEME)) {
            return null;
        }
        String rest = uri.substring(CLUSTER_SCHEME.length());
        if (rest.endsWith("/")) {
            rest = rest.substring(0, rest.length() - 1);
        }
        List<String> seeds = new ArrayList<>();
        for (String seed : rest.split(",", -1)) {
            int colon = seed.lastIndexOf(':');
            String host = colon < 0 ? seed : seed.substring(0, colon);
            int port = -1;
            if (colon >= 0) {
                try {
                    port = Integer.parseInt(seed.substring(colon + 1));
                } catch (NumberFormatException e) {
                    port = -1;
                }
            }
            if (host.isEmpty() || host.contains("@") || host.contains("/") || port < 1 || port > 65535) {
                throw new KvArgumentException("a Redis Cluster URI is redis-cluster://host:port[,host:port...] "
                        + "(seed nodes, each with its port), got '" + uri + "'");
            }
            seeds.add("redis://" + host + ":" + port);
        }
        return List.copyOf(seeds);
    }

    /**
     * {@code uri} with the default timeout and key prefix and no TTL.
     *
     * @param uri {@code redis://[user:password@]host[:port][/database]}, {@code rediss://...}, or
     *            {@code redis-cluster://host:port[,host:port...]}
     * @return the configuration
     */
    public static RedisTierConfig of(String uri) {
        return new RedisTierConfig(uri, DEFAULT_TIMEOUT, DEFAULT_PREFIX, Duration.ZERO);
    }

    /**
     * This configuration with another call timeout.
     *
     * @param t the longest any one call waits, in {@code (0, 10 min]}
     * @return a new configuration
     */
    public RedisTierConfig withTimeout(Duration t) {
        return new RedisTierConfig(uri, t, keyPrefix, ttl);
    }

    /**
     * This configuration with another key prefix.
     *
     * @param p prepended to every key, not null, at most 256 characters
     * @return a new configuration
     */
    public RedisTierConfig withKeyPrefix(String p) {
        return new RedisTierConfig(uri, timeout, p, ttl);
    }

    /**
     * This configuration with another record expiry.
     *
     * @param t expiry of every stored value, {@code >= 0}; {@link Duration#ZERO} for none
     * @return a new configuration
     */
    public RedisTierConfig withTtl(Duration t) {
        return new RedisTierConfig(uri, timeout, keyPrefix, t);
    }
}
