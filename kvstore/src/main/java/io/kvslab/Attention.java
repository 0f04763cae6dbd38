package io.kvslab;

import io.kvslab.internal.table.TableAttention;

import java.lang.foreign.MemorySegment;

/**
 * Attention over a {@link Sequence}'s block tables with the native kernel: decode (one new token) and causal
 * prefill (a chunk just appended). Scale is {@code 1 / sqrt(headDim)}; query head {@code qh} reads KV head
 * {@code qh / groupSize}.
 *
 * <p>An instance owns native scratch (query, output, block-address arrays) that grows to the largest call and is
 * reused, so a decode step allocates nothing. One call at a time: a call while another thread's call on the same
 * instance runs (or {@link #close()} during a call) fails with {@link ConcurrentUseException}; use one instance
 * per thread. Each call holds the sequence's read lock (inside the store's shared lock) while the kernel reads
 * block memory, so a concurrent close, eviction or compaction waits instead of freeing or moving blocks under it.
 */
public final class Attention implements AutoCloseable {
    /** Largest thread count a call accepts. */
    public static final int MAX_THREADS = TableAttention.MAX_THREADS;

    private final TableAttention kernel;
    private final QueryPrecision queryPrecision;

    /**
     * How decode attention computes with quantised rows (q8_0, q4_0): exact f32 arithmetic, llama.cpp's integer dot
     * products for the scores of quantised keys, or integer arithmetic for the weighted sum of quantised values too.
     */
    public enum QueryPrecision {
        /**
         * The query stays f32 and every key is dequantised in registers: the output matches attention over the
         * dequantised rows to float rounding (relative 1e-5). The default.
         */
        EXACT,
        /**
         * Decode only, for q8_0 and q4_0 keys: each query head (times the softmax scale) is quantised to q8_0 once
         * per call (per group of {@code min(32, headDim)} values, the store's groups, an f32 scale
         * {@code amax / 127} and 8-bit codes) and scores are integer dot products of the codes times the two
         * scales, as llama.cpp computes them. Scores then also carry the query's rounding (at most half a code step
         * per value), so the output is no longer within float rounding of {@link #EXACT}; see docs/dtypes.md for
         * the measured error. Other key types and prefill use the exact path; values are summed in f32.
         */
        Q8_0,
        /**
         * {@link #Q8_0}'s scores, and for q8_0 and q4_0 values (decode only) an integer weighted sum: per tile of
         * rows (at most 64, within a block), query head and group of V values the softmax weights times the rows'
         * scales are rounded to 8-bit codes (scale: the tile's largest weight times its largest row scale, over
         * 127) and summed with the V codes in exact integer arithmetic. Each weight is then off by at most half a
         * code step; see docs/dtypes.md for the bound and the measured error. Other value types and prefill sum
         * in f32.
         */
        INT8
    }

    private Attention(int threads, QueryPrecision precision) {
        this.kernel = new TableAttention(threads, "Attention", precision != QueryPrecision.EXACT,
                precision == QueryPrecision.INT8);
        this.queryPrecision = precision;
    }

    /**
     * Creates an attention instance whose calls split their work over at most {@code threads} kernel threads. The
     * instance is for one thread at a time; close it to free its native scratch.
     *
     * @param threads upper bound on kernel threads, in {@code [1, }{@value #MAX_THREADS}{@code ]}
     * @return a new, open instance
     * @throws KvArgumentException if {@code threads} is out of range
     */
    public static Attention create(int threads) {
        return new Attention(threads, QueryPrecision.EXACT);
    }

    /**
     * Creates an attention instance with a chosen precision for the decode scores of quantised keys
     * ({@link QueryPrecision}); otherwise as {@link #create(int)}.
     *
     * @param threads upper bound on kernel threads, in {@code [1, }{@value #MAX_THREADS}{@code ]}
     * @param precision how decode computes with q8_0 / q4_0 keys and values; not null
     * @return a new, open instance
     * @throws KvArgumentException if {@code threads} is out of range or {@code precision} is null
     */
    public static Attention create(int threads, QueryPrecision precision) {
        if (precision == null) {
            throw new KvArgumentException("precision must not be null (QueryPrecision.EXACT, Q8_0 or INT8)");
        }
        return new Attention(threads, precision);
    }

    /**
     * The precision of decode scores of quantised keys this instance was created with.
     *
     * @return {@link QueryPrecision#EXACT} unless created with another
     */
    public QueryPrecision queryPrecision() {
        return queryPrecision;
    }

    /**
     * The thread bound this instance was created with.
     *
     * @return the upper bound on kernel threads per call, in {@code [1, MAX_THREADS]}
     */
    public int threads() {
        return kernel.threads();
    }

    /**
     * Attention of one new token's queries over every row of {@code layer}.
     *
     * @param q   {@code float[queryHeads * headDim]}, RoPE applied, not scaled
     * @param out {@code float[queryHeads * headDim]}, written
     * @param seq the sequence to attend over; open, of any store whose layout matches the arrays
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     */
    public void decode(Sequence seq, int layer, float[] q, float[] out) {
        decode(seq, layer, q, out, null);
    }

    /**
     * Like {@link #decode(Sequence, int, float[], float[])}, also writing each query head's log-sum-exp of scaled
     * scores into {@code lse[queryHeads]} ({@code -Infinity} for a KV head without rows), so that partial
     * attentions over other key sources can be merged exactly.
     *
     * @param seq the sequence to attend over; open
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param q {@code float[queryHeads * headDim]}, RoPE applied, not scaled
     * @param out {@code float[queryHeads * headDim]}, written
     * @param lse {@code float[queryHeads]}, written
     */
    public void decode(Sequence seq, int layer, float[] q, float[] out, float[] lse) {
        kernel.decode(tables(seq), layer, q, out, lse);
    }

    /**
     * Causal attention for the last {@code n} rows of every KV head of {@code layer} (a chunk just appended):
     * query token {@code i} sees rows {@code 0 .. length - n + i}.
     *
     * @param q   {@code float[n * queryHeads * headDim]} laid out [token][query head][dim]
     * @param out same shape, written
     * @param seq the sequence to attend over; open, holding at least {@code n} rows in every KV head of {@code layer}
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param n number of query tokens, the last {@code n} rows appended, {@code >= 1}
     */
    public void prefill(Sequence seq, int layer, float[] q, int n, float[] out) {
        kernel.prefill(tables(seq), layer, q, n, out);
    }

    /**
     * Decode with the caller's own tensors, for an engine whose activations live in native memory:
     * {@code q} and {@code out} hold {@code queryHeads * headDim} f32 values ([query head][dim]). Native segments
     * are read and written in place by the kernel (no copy); heap segments are copied once each way.
     *
     * @param seq the sequence to attend over; open
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param q the queries, {@code queryHeads * headDim} f32 values, RoPE applied, not scaled; heap or native
     * @param out receives the attention output, {@code queryHeads * headDim} f32 values; heap or native, writable
     */
    public void decode(Sequence seq, int layer, MemorySegment q, MemorySegment out) {
        kernel.decode(tables(seq), layer, q, out);
    }

    /**
     * Decode attention of a batch of sequences of one store over {@code layer} in one native call, the step of a
     * continuously batched server: row {@code i} of {@code q} attends over every row of {@code batch.get(i)} into
     * row {@code i} of {@code out}. {@code q} and {@code out} hold {@code batch.size() * queryHeads * headDim} f32
     * values ([sequence][query head][dim]); native segments are used in place, heap ones copied once each way.
     * Each row's result is bitwise what {@link #decode(Sequence, int, MemorySegment, MemorySegment)} gives for it
     * alone on an instance with the same thread count, whatever else is in the batch; the work of all rows is
     * split across the kernel threads by (sequence, KV head, row chunk). Sequences may have different lengths
     * (0 too: that row's output is zeros), share blocks (forks) or appear twice.
     *
     * <p>The whole call is validated before anything is locked or written (null or empty batch, sequences of
     * different stores, a layer out of range, tensor sizes other than the batch's, non-finite queries:
     * {@link KvArgumentException}). The sequences' read locks are then taken in ascending id order and held for
     * the native call; a closed sequence or store fails with {@link ClosedException}, leaving {@code out}
     * untouched.
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param batch the sequences, one per query row; all open and of one store
     * @param q {@code batch.size() * queryHeads * headDim} f32 queries, RoPE applied, not scaled
     * @param out receives {@code batch.size() * queryHeads * headDim} f32 outputs
     */
    public void decodeBatch(int layer, java.util.List<Sequence> batch, MemorySegment q, MemorySegment out) {
        kernel.decodeBatch(batch, TABLES_OF, layer, q, out, null);
    }

    /**
     * Like {@link #decodeBatch(int, java.util.List, MemorySegment, MemorySegment)}, also writing every row's
     * per-query-head log-sum-exp of scaled scores into {@code lse} ({@code batch.size() * queryHeads} f32 values,
     * {@code -Infinity} for a KV head without rows).
     *
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param batch the sequences, one per query row; all open and of one store
     * @param q {@code batch.size() * queryHeads * headDim} f32 queries, RoPE applied, not scaled
     * @param out receives {@code batch.size() * queryHeads * headDim} f32 outputs
     * @param lse receives {@code batch.size() * queryHeads} f32 log-sum-exp values
     */
    public void decodeBatch(int layer, java.util.List<Sequence> batch, MemorySegment q, MemorySegment out,
                            MemorySegment lse) {
        if (lse == null) {
            throw new KvArgumentException("lse must not be null (use the overload without lse)");
        }
        kernel.decodeBatch(batch, TABLES_OF, layer, q, out, lse);
    }

    /**
     * Causal prefill with the caller's own tensors: {@code n * queryHeads * headDim} f32 values each.
     *
     * @param seq the sequence to attend over; open, holding at least {@code n} rows in every KV head of {@code layer}
     * @param layer layer index, in {@code [0, layers)} of the store's layout
     * @param q {@code n * queryHeads * headDim} f32 queries laid out [token][query head][dim], RoPE applied
     * @param n number of query tokens, the last {@code n} rows appended, {@code >= 1}
     * @param out receives the output, same shape as {@code q}
     */
    public void prefill(Sequence seq, int layer, MemorySegment q, int n, MemorySegment out) {
        kernel.prefill(tables(seq), layer, q, n, out);
    }

    /** Frees the scratch; fails with {@link ConcurrentUseException} while a call runs. Idempotent. */
    @Override
    public void close() {
        kernel.close();
    }

    // The batch is handed to the kernel as the caller's list with this function (a constant: no copy per call,
    // the batched step allocates nothing); the kernel rejects a null list or element before it applies it.
    private static final java.util.function.Function<Sequence, io.kvslab.internal.table.SequenceTables> TABLES_OF =
            s -> s.tables;

    private static io.kvslab.internal.table.SequenceTables tables(Sequence seq) {
        if (seq == null) {
            throw new KvArgumentException("sequence must not be null");
        }
        return seq.tables;
    }
}
