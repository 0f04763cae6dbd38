package io.kvslab.tier;

/**
 * Counters of one {@link BlockTier} since it was opened.
 *
 * @param puts records stored
 * @param putFailures puts declined or failed (full, unreachable, timed out)
 * @param hits gets that returned bytes
 * @param misses gets that found nothing
 * @param getFailures gets that failed (unreachable, timed out)
 * @param removes values removed
 * @param bytesWritten record bytes stored by successful puts
 * @param bytesRead record bytes returned by hits
 * @param bytesHeld bytes the tier holds now, where it knows (a capped disk tier does); -1 when unknown
 */
public record TierStats(long puts, long putFailures, long hits, long misses, long getFailures, long removes,
                        long bytesWritten, long bytesRead, long bytesHeld) {}
