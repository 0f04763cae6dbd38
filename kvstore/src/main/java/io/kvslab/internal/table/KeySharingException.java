package io.kvslab.internal.table;

import io.kvslab.KvArgumentException;

/**
 * A cross-layer key alias was refused: the base layer is not below the layer, the block is not full in both
 * tables (a partial tail still receives appends, so it is never shared), or the two tables do not hold the same
 * positions in that block (for example after per-layer eviction). The message names the layer, KV head and block
 * and what is allowed; nothing was changed.
 *
 * <p>Internal: callers see and catch it as a {@link KvArgumentException}.
 */
public final class KeySharingException extends KvArgumentException {
    public KeySharingException(String message) {
        super(message);
    }
}
