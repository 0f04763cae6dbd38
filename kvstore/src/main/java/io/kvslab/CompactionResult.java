package io.kvslab;

/**
 * What one compaction did.
 *
 * @param blocksMoved    blocks copied out of sparse slabs (their handles stay valid)
 * @param bytesMoved     bytes copied
 * @param slabsReleased  slabs returned to the OS
 * @param bytesReleased  native bytes returned to the OS
 */
public record CompactionResult(long blocksMoved, long bytesMoved, int slabsReleased, long bytesReleased) {
}
