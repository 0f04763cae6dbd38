package io.kvslab.bench.serve;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Where {@code kvslab serve} shares prefix blocks below native memory ({@code --remote-tier}, {@code --disk-tier}).
 *
 * @param redisUri   {@code redis://host:port}, or null for none
 * @param diskDir    a disk tier directory, or null for none
 * @param diskCap    the disk tier's size cap in bytes
 * @param timeout    the longest one Redis call may take
 * @param queue      prefix blocks the write-behind queue holds at most
 * @param modelId    names the model's weights in every block key; null: derived from the model file
 */
record TierOptions(String redisUri, Path diskDir, long diskCap, Duration timeout, int queue, String modelId) {
    static final long DEFAULT_DISK_CAP = 1L << 30;
    static final Duration DEFAULT_TIMEOUT = Duration.ofMillis(250);
    static final int DEFAULT_QUEUE = 1024;

    TierOptions {
        if (diskCap <= 0) {
            throw new IllegalArgumentException("--disk-cap must be > 0, got " + diskCap);
        }
        if (timeout == null || timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("--tier-timeout must be > 0, got " + timeout);
        }
        if (queue < 1 || queue > 65536) {
            throw new IllegalArgumentException("the tier queue must hold 1 to 65536 blocks, got " + queue);
        }
    }

    static TierOptions redis(String uri) {
        return new TierOptions(uri, null, DEFAULT_DISK_CAP, DEFAULT_TIMEOUT, DEFAULT_QUEUE, null);
    }

    boolean any() {
        return redisUri != null || diskDir != null;
    }

    TierOptions withTimeout(Duration t) {
        return new TierOptions(redisUri, diskDir, diskCap, t, queue, modelId);
    }

    TierOptions withModelId(String id) {
        return new TierOptions(redisUri, diskDir, diskCap, timeout, queue, id);
    }
}
