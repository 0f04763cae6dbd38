package io.kvslab.tier;

import java.util.HexFormat;

/**
 * The 128-bit name of one block record in a tier. Prefix blocks are named by their content (chained hash of the
 * tokens, salted with the model and store layout); swapped-out blocks by the sequence that owns them.
 *
 * @param high the upper 64 bits
 * @param low the lower 64 bits
 */
public record BlockKey(long high, long low) {

    /**
     * The key as 32 lowercase hex digits, upper bits first: the form tiers use for file names and Redis keys.
     *
     * @return 32 lowercase hex digits
     */
    public String hex() {
        HexFormat f = HexFormat.of();
        return f.toHexDigits(high) + f.toHexDigits(low);
    }

    /**
     * Parses {@link #hex()}'s form.
     *
     * @param hex 32 hex digits, either case
     * @return the key
     * @throws IllegalArgumentException if {@code hex} is not exactly 32 hex digits
     */
    public static BlockKey ofHex(String hex) {
        if (hex == null || hex.length() != 32) {
            throw new IllegalArgumentException("a block key is 32 hex digits, got "
                    + (hex == null ? "null" : hex.length() + " characters"));
        }
        try {
            return new BlockKey(HexFormat.fromHexDigitsToLong(hex, 0, 16), HexFormat.fromHexDigitsToLong(hex, 16, 32));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("a block key is 32 hex digits, got '" + hex + "'", e);
        }
    }

    @Override
    public String toString() {
        return hex();
    }
}
