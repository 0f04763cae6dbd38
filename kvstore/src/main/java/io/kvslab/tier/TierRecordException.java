package io.kvslab.tier;

import io.kvslab.KvSlabException;

/**
 * A block record could not be stored in or used from a {@link BlockTier}. Reading: the tier no longer holds it, or it
 * failed one of the record format's checks (docs/tiers.md, "What each check rejects"); the record is never used, the
 * operation that needed it (a swap-in, a prefix read-through) leaves the store unchanged and the caller recomputes.
 * Writing ({@link Reason#DECLINED}): the tier would not store a record a swap-out needed; the records already
 * written are removed and the sequence stays in memory unchanged. {@link #reason()} says which, for counting.
 */
public final class TierRecordException extends KvSlabException {
    /** Why a record was rejected. */
    public enum Reason {
        /**
         * The tier declined or failed to store the record (full, unreachable, timed out); the message names the
         * tier. Thrown by a swap-out, which then leaves the sequence in memory unchanged.
         */
        DECLINED,
        /** The tier returned nothing for the key (evicted, expired, lost, unreachable). */
        MISSING,
        /** Shorter than a record header. */
        TRUNCATED,
        /** The first 8 bytes are not the record magic. */
        BAD_MAGIC,
        /** A format version this build does not read. */
        UNSUPPORTED_VERSION,
        /** The record's length differs from the length its header declares (cut short or trailing bytes). */
        LENGTH_MISMATCH,
        /** The CRC32C over the record does not match. */
        CHECKSUM_MISMATCH,
        /** Written for another store layout (dtype, tokens per block, layers, heads, head dim). */
        LAYOUT_MISMATCH,
        /** A header field is out of its allowed range or inconsistent with the others. */
        BAD_HEADER,
        /** Positions are negative or not strictly increasing. */
        BAD_POSITIONS,
        /** A stored element is NaN or infinite (append would have refused it). */
        NON_FINITE_VALUE,
        /** An intact record, but not the one the caller wrote under this key (other kind, table, positions). */
        UNEXPECTED_CONTENT
    }

    /** Which check rejected the record. */
    private final Reason reason;
    private final transient BlockKey key;

    /**
     * An exception for one rejected record.
     *
     * @param reason which check failed
     * @param key the key the record was read or written under, or {@code null}
     * @param message names the record, the check and what was expected
     */
    public TierRecordException(Reason reason, BlockKey key, String message) {
        super(message);
        this.reason = reason;
        this.key = key;
    }

    /**
     * Which check rejected the record, for counting rejections by cause.
     *
     * @return the reason, not null
     */
    public Reason reason() {
        return reason;
    }

    /**
     * The key the record was read or written under, or {@code null} when decoded without one.
     *
     * @return the key, or {@code null}
     */
    public BlockKey key() {
        return key;
    }
}
