package io.kvslab.tier;

/**
 * Counters of one {@link PrefixTier} since it was created. Block counts are token blocks (one block of K and V
 * rows of every layer and KV head each).
 *
 * @param lookups          lookups made
 * @param localBlocks      blocks a lookup found in the local prefix cache
 * @param fetchedBlocks    blocks fetched from the tier, verified and used
 * @param missedBlocks     blocks neither local nor in the tier (to recompute)
 * @param rejectedBlocks   values the tier returned that failed a check (envelope, record format, layout, tokens,
 *                         positions, CRC32C): ignored, never used
 * @param fetchFailures    lookups whose tier read failed (unreachable, timed out) and fell back to recompute
 * @param queuedBlocks     blocks accepted into the write-behind queue
 * @param publishedBlocks  blocks the tier stored
 * @param publishFailures  blocks the tier declined or failed to store
 * @param droppedBlocks    blocks not queued because the queue was full (the decode step never waits)
 * @param bytesFetched     value bytes fetched and used
 * @param bytesPublished   value bytes stored
 * @param queueDepth       blocks waiting in the queue now
 */
public record PrefixTierStats(long lookups, long localBlocks, long fetchedBlocks, long missedBlocks,
                              long rejectedBlocks, long fetchFailures, long queuedBlocks, long publishedBlocks,
                              long publishFailures, long droppedBlocks, long bytesFetched, long bytesPublished,
                              int queueDepth) {}
