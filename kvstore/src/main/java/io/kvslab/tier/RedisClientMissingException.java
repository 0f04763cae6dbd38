package io.kvslab.tier;

import io.kvslab.KvSlabException;

/**
 * {@link RedisTier} cannot run in this JVM: Lettuce ({@code io.lettuce:lettuce-core}, an optional dependency of
 * kvslab-core) or one of its own dependencies (Netty, Reactor) is not on the class path or module path. Thrown by
 * {@link RedisTier#connect}, before any connection is attempted.
 */
public final class RedisClientMissingException extends KvSlabException {
    RedisClientMissingException(String message, Throwable cause) {
        super(message, cause);
    }
}
