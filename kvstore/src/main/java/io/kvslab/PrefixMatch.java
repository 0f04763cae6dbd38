package io.kvslab;

/**
 * The result of {@link PrefixCache#lookup}: a new sequence holding the cached prefix, and how many tokens of the
 * query it covers (a multiple of {@code tokensPerBlock}; 0 on a miss, with an empty sequence). The caller owns
 * the sequence and closes it.
 *
 * @param sequence       rows of tokens {@code 0 .. matchedTokens - 1} at positions {@code 0 .. matchedTokens - 1}
 * @param matchedTokens  leading tokens served from the cache
 */
public record PrefixMatch(Sequence sequence, int matchedTokens) {
    /**
     * Whole blocks of the query served from the cache ({@code matchedTokens / tokensPerBlock}).
     *
     * @return {@code matchedTokens / tokensPerBlock} of the store's layout
     */
    public int matchedBlocks() {
        return matchedTokens / sequence.layout().tokensPerBlock();
    }
}
