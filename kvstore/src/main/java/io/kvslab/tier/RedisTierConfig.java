package io.kvslab.tier;

import io.kvslab.KvArgumentException;

import java.net.URI;
import java.net.URISyntaxException;
import java.time.Duration;

/**
 * How a {@link RedisTier} reaches its server.
 *
 * @param uri       {@code redis://[user:password@]host[:port][/database]} (TLS: {@code rediss://})
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

    /**
     * Checks the values.
     *
     * @throws KvArgumentException if the URI is null, not {@code redis://} or {@code rediss://}, or has no host; the
     *         timeout is not in {@code (0, 10 min]}; the prefix is null or longer than 256 characters; or the TTL
     *         is null or negative
     */
    public RedisTierConfig {
        if (uri == null) {
            throw new KvArgumentException("the Redis URI must not be null");
        }
        URI parsed;
        try {
            parsed = new URI(uri);
        } catch (URISyntaxException e) {
            throw new KvArgumentException("not a Redis URI: '" + uri + "' (" + e.getReason()
                    + "); expected redis://host:port[/db]");
        }
        if (!"redis".equals(parsed.getScheme()) && !"rediss".equals(parsed.getScheme())) {
            throw new KvArgumentException("a Redis URI starts with redis:// or rediss://, got '" + uri + "'");
        }
        if (parsed.getHost() == null || parsed.getHost().isEmpty()) {
            throw new KvArgumentException("the Redis URI '" + uri + "' names no host; expected redis://host:port");
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

    /**
     * {@code uri} with the default timeout and key prefix and no TTL.
     *
     * @param uri {@code redis://[user:password@]host[:port][/database]} or {@code rediss://...}
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
