package io.kvslab.snapshot;

import io.kvslab.KvLayout;

import java.util.List;

/**
 * What a snapshot file holds.
 *
 * @param formatVersion     the file's format version
 * @param layout            the KV layout it was taken with
 * @param sequenceIds       ids the sequences had when saved, in file order
 * @param rows              K/V rows stored, summed over every sequence and (layer, KV head)
 * @param blocks            distinct blocks stored (each shared block once)
 * @param sharedBlocks      of those, blocks named by more than one table slot (fork, prefix or cross-layer sharing)
 * @param fileBytes         file size
 * @param createdAtMillis   when it was written (epoch milliseconds)
 */
public record SnapshotInfo(int formatVersion, KvLayout layout, List<Long> sequenceIds, long rows, int blocks,
                           int sharedBlocks, long fileBytes, long createdAtMillis) {
    /** Copies the sequence id list. */
    public SnapshotInfo {
        sequenceIds = List.copyOf(sequenceIds);
    }
}
