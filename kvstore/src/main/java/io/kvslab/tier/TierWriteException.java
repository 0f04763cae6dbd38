package io.kvslab.tier;

import io.kvslab.KvSlabException;

/**
 * A {@link BlockTier} declined or failed to store a record a swap-out needed (full, unreachable, timed out).
 * The swap-out wrote nothing that stays (records already stored are removed again) and the sequence is
 * unchanged: the caller keeps it in memory, or drops it for recompute.
 */
public final class TierWriteException extends KvSlabException {
    /** The name of the tier that declined. */
    private final String tier;

    /**
     * An exception for a declined write.
     *
     * @param tier the tier's {@link BlockTier#name()}
     * @param message names the record and why it was not stored
     */
    public TierWriteException(String tier, String message) {
        super(message);
        this.tier = tier;
    }

    /**
     * The {@link BlockTier#name()} of the tier that declined.
     *
     * @return the tier's name
     */
    public String tier() {
        return tier;
    }
}
