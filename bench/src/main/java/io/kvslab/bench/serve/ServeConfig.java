package io.kvslab.bench.serve;

import io.kvslab.DType;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.Session;

/**
 * How the server runs.
 *
 * @param maxBatch      sequences decoded per step at most (more requests wait)
 * @param kvLimitBytes  the store's memory limit ({@link Long#MAX_VALUE} for none)
 * @param slabBytes     the store's slab size; 0 picks one that holds four whole-context sequences
 * @param matMul        the projections' matrix product ({@link MatMul#JAVA} keeps every row's sums in llama2.c's
 *                      order whatever the batch, so results are independent of the batch by construction)
 * @param prefillChunk  prompt tokens run per step for a newly admitted request
 * @param pressure      what to do when the next step does not fit the limit ({@code compress:POLICY:BUDGET,swap,
 *                      recompute}, see {@link PressurePolicy}); null: the request that finds no
 *                      room fails with 503
 * @param prefixCache   reuse the KV blocks of identical prompt prefixes ({@link io.kvslab.PrefixCache})
 * @param decodeThreads threads of the batched decode attention call (the caller plus pool workers); a small model's
 *                      rows are microseconds of work, where a second thread mostly adds a hand-off and, when the
 *                      cores are busy, a wait at the end of every call for a worker that is not running
 * @param keyDtype      how the store keeps K rows ({@code --kv-dtype}; f32 by default)
 * @param valueDtype    how the store keeps V rows
 * @param streamInterval a stream's token events are handed to its HTTP thread this many at a time (the first token
 *                      and the end at once): 1 streams every token as it is made; more saves wake-ups, writes and
 *                      flushes per token on both ends of the stream
 */
record ServeConfig(int maxBatch, long kvLimitBytes, long slabBytes, MatMul matMul, int prefillChunk, String pressure,
                   boolean prefixCache, int decodeThreads, DType keyDtype, DType valueDtype,
                   int streamInterval) {
    static final int DEFAULT_MAX_BATCH = 32;
    static final int DEFAULT_DECODE_THREADS = 2;

    ServeConfig {
        if (maxBatch < 1 || maxBatch > 4096) {
            throw new IllegalArgumentException("max batch must be in [1, 4096], got " + maxBatch);
        }
        if (kvLimitBytes <= 0 || slabBytes < 0) {
            throw new IllegalArgumentException("kv limit must be > 0 and slab >= 0, got " + kvLimitBytes + " and " + slabBytes);
        }
        if (decodeThreads < 1 || decodeThreads > 64) {
            throw new IllegalArgumentException("decode threads must be in [1, 64], got " + decodeThreads);
        }
        if (keyDtype == null || valueDtype == null) {
            throw new IllegalArgumentException("K and V dtypes must be given, got " + keyDtype + " and " + valueDtype);
        }
        if (streamInterval < 1 || streamInterval > 1024) {
            throw new IllegalArgumentException("stream interval must be in [1, 1024] tokens, got " + streamInterval);
        }
        if (prefillChunk < 1) {
            throw new IllegalArgumentException("prefill chunk must be >= 1, got " + prefillChunk);
        }
    }

    static ServeConfig defaults() {
        return new ServeConfig(DEFAULT_MAX_BATCH, Long.MAX_VALUE, 0, MatMul.JAVA, Session.DEFAULT_CHUNK, null, false,
                DEFAULT_DECODE_THREADS, DType.F32, DType.F32, 1);
    }

    ServeConfig withMaxBatch(int n) {
        return new ServeConfig(n, kvLimitBytes, slabBytes, matMul, prefillChunk, pressure, prefixCache, decodeThreads, keyDtype, valueDtype, streamInterval);
    }

    ServeConfig withKvLimit(long limit, long slab) {
        return new ServeConfig(maxBatch, limit, slab, matMul, prefillChunk, pressure, prefixCache, decodeThreads, keyDtype, valueDtype, streamInterval);
    }

    ServeConfig withMatMul(MatMul m) {
        return new ServeConfig(maxBatch, kvLimitBytes, slabBytes, m, prefillChunk, pressure, prefixCache, decodeThreads, keyDtype, valueDtype, streamInterval);
    }

    ServeConfig withPressure(String spec) {
        return new ServeConfig(maxBatch, kvLimitBytes, slabBytes, matMul, prefillChunk, spec, prefixCache, decodeThreads, keyDtype, valueDtype, streamInterval);
    }

    ServeConfig withPrefixCache(boolean on) {
        return new ServeConfig(maxBatch, kvLimitBytes, slabBytes, matMul, prefillChunk, pressure, on, decodeThreads, keyDtype, valueDtype, streamInterval);
    }

    ServeConfig withDecodeThreads(int n) {
        return new ServeConfig(maxBatch, kvLimitBytes, slabBytes, matMul, prefillChunk, pressure, prefixCache, n, keyDtype, valueDtype, streamInterval);
    }

    /** K rows stored as {@code key}, V rows as {@code value} (the same type for both: a single {@code --kv-dtype}). */
    ServeConfig withKvDtypes(DType key, DType value) {
        return new ServeConfig(maxBatch, kvLimitBytes, slabBytes, matMul, prefillChunk, pressure, prefixCache,
                decodeThreads, key, value, streamInterval);
    }

    ServeConfig withStreamInterval(int tokens) {
        return new ServeConfig(maxBatch, kvLimitBytes, slabBytes, matMul, prefillChunk, pressure, prefixCache,
                decodeThreads, keyDtype, valueDtype, tokens);
    }
}
