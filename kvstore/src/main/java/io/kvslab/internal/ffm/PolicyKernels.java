package io.kvslab.internal.ffm;

import io.kvslab.KvSlabException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.IntStream;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * Java binding of the policy kernels in {@code policy_kernels.c}: observation-window attention and the L1 norms of
 * values projected through W_o, both as OpenBLAS {@code sgemm} plus a reduction (the L1 norms of a subset of rows with
 * the fused kernel that replays that sgemm's arithmetic in registers, where it is checked to give the same bits); and
 * the L2 norms of the projected values from W_o's per-head Gram matrices (also an sgemm, {@code headDim^2}
 * multiply-adds per row and head).
 *
 * <p>Inputs are plain fp32 arrays (what {@code Sequence.readKeys/readValues} return). They are copied into one
 * off-heap workspace that grows geometrically and is reused across calls, so a compression pass allocates native
 * memory only a handful of times. Every argument is validated before the native call; bad input throws
 * {@link PolicyKernelException} and leaves every output array untouched.
 *
 * <p>An instance is confined to the thread that created it (its workspace is a confined arena). Close it to free
 * the workspace.
 */
public final class PolicyKernels implements AutoCloseable {
    /** Rows of V processed per sgemm in the value-norm kernel; bounds its scratch to TILE x modelDim floats. */
    static final int NORM_TILE = 256;
    /**
     * Rows per sgemm when a subset of rows is packed ({@link RowPacking}): 85 blocks of 12 and a group of 4, so four
     * times fewer products than {@link #NORM_TILE}, each of which packs the head's W_o slice again (about a tenth
     * of a 256-row product's time); the rows of the 4-row kind that do not fit go to the paired-chain kernel.
     */
    static final int NORM_PACKED_TILE = 1024;
    private static final long MAX_ELEMENTS = Integer.MAX_VALUE;

    private static volatile MethodHandle windowAttention;
    private static volatile MethodHandle valueNorms;
    private static volatile MethodHandle valueNormsPaired;
    private static volatile MethodHandle valueNormsFused;
    private static volatile MethodHandle chainMasks;
    private static volatile MethodHandle gram;
    private static volatile MethodHandle valueL2Norms;
    /** Rows per sgemm in the L2 value-norm kernel: scratch of L2_TILE x groupHeads x headDim floats. */
    static final int L2_TILE = 512;

    private Arena arena;
    private MemorySegment workspace;
    private boolean closed;

    /** Whether calls go to libkvslab; otherwise to the plain-Java kernels (same contract, see JavaPolicyKernels). */
    private final boolean nativeKernels;

    private PolicyKernels() {
        nativeKernels = NativeLibrary.isAvailable();
        if (nativeKernels) {
            bind();
        }
    }

    /** A kernel context with an empty workspace; loads {@code libkvslab.so} on first use. */
    public static PolicyKernels create() {
        return new PolicyKernels();
    }

    private static void bind() {
        if (windowAttention == null) {
            synchronized (PolicyKernels.class) {
                if (windowAttention == null) {
                    NativeLibrary lib = NativeLibrary.get();
                    valueNorms = lib.handle("kvs_policy_value_norms", FunctionDescriptor.of(JAVA_INT,
                            ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT,
                            JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
                    valueNormsPaired = lib.handle("kvs_policy_value_norms_paired", FunctionDescriptor.of(
                            JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT,
                            JAVA_INT, ADDRESS, ADDRESS));
                    valueNormsFused = lib.handle("kvs_policy_value_norms_fused", FunctionDescriptor.of(
                            JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT,
                            JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
                    chainMasks = lib.handle("kvs_policy_l1_chain_masks", FunctionDescriptor.of(JAVA_INT,
                            JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
                    gram = lib.handle("kvs_policy_gram", FunctionDescriptor.of(JAVA_INT,
                            ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS));
                    valueL2Norms = lib.handle("kvs_policy_value_l2_norms", FunctionDescriptor.of(JAVA_INT,
                            ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
                    windowAttention = lib.handle("kvs_policy_window_attention", FunctionDescriptor.of(JAVA_INT,
                            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT,
                            ADDRESS, ADDRESS, JAVA_FLOAT, ADDRESS, ADDRESS, ADDRESS));
                }
            }
        }
    }

    /**
     * Causal attention of the window queries of one GQA group over one KV head's keys.
     *
     * @param queries        {@code [window][queryHeads][headDim]} (RoPE applied)
     * @param window         number of window queries, at least 1
     * @param queryHeads     query heads per token in {@code queries}
     * @param headDim        elements per head
     * @param firstHead      first query head of the group
     * @param groupHeads     query heads in the group ({@code firstHead + groupHeads <= queryHeads})
     * @param keys           {@code [rows][headDim]}, the KV head's keys
     * @param rows           number of keys (0 returns at once with the outputs untouched)
     * @param keyPositions   absolute positions of the keys, strictly ascending
     * @param queryPositions absolute positions of the window queries; query i sees the keys at positions at most
     *                       {@code queryPositions[i]}
     * @param meanOut        receives {@code [groupHeads][rows]}: the mean over the queries of each key's probability
     * @param lastOut        receives {@code [groupHeads][rows]}: the last query's probabilities; may be null
     */
    public void windowAttention(float[] queries, int window, int queryHeads, int headDim, int firstHead,
                                int groupHeads, float[] keys, int rows, long[] keyPositions, long[] queryPositions,
                                float[] meanOut, float[] lastOut) {
        checkOpen();
        positive("window", window);
        positive("queryHeads", queryHeads);
        positive("headDim", headDim);
        checkGroup(queryHeads, firstHead, groupHeads, rows);
        long qLen = elements("window queries", (long) window * queryHeads * headDim);
        atLeast("queries", queries, qLen);
        atLeast("queryPositions", queryPositions, window);
        if (rows == 0) {
            return;
        }
        long kLen = elements("keys", (long) rows * headDim);
        long outLen = elements("outputs", (long) groupHeads * rows);
        long scratch = elements("window x rows scratch", (long) window * rows);
        atLeast("keys", keys, kLen);
        atLeast("keyPositions", keyPositions, rows);
        atLeast("meanOut", meanOut, outLen);
        if (lastOut != null) {
            atLeast("lastOut", lastOut, outLen);
        }
        ascending("keyPositions", keyPositions, rows);
        if (!nativeKernels) {
            JavaPolicyKernels.windowAttention(queries, window, queryHeads, headDim, firstHead, groupHeads, keys, rows,
                    keyPositions, queryPositions, (float) (1.0 / Math.sqrt(headDim)), meanOut, lastOut);
            return;
        }

        long bytes = 0;
        long qOff = bytes;
        bytes = align(bytes + qLen * Float.BYTES);
        long kOff = bytes;
        bytes = align(bytes + kLen * Float.BYTES);
        long kpOff = bytes;
        bytes = align(bytes + (long) rows * Long.BYTES);
        long qpOff = bytes;
        bytes = align(bytes + (long) window * Long.BYTES);
        long meanOff = bytes;
        bytes = align(bytes + outLen * Float.BYTES);
        long lastOff = bytes;
        bytes = align(bytes + (lastOut != null ? outLen * Float.BYTES : 0));
        long scratchOff = bytes;
        bytes = align(bytes + scratch * Float.BYTES);
        MemorySegment ws = workspace(bytes);

        MemorySegment.copy(queries, 0, ws, JAVA_FLOAT, qOff, (int) qLen);
        MemorySegment.copy(keys, 0, ws, JAVA_FLOAT, kOff, (int) kLen);
        MemorySegment.copy(keyPositions, 0, ws, JAVA_LONG, kpOff, rows);
        MemorySegment.copy(queryPositions, 0, ws, JAVA_LONG, qpOff, window);
        float scale = (float) (1.0 / Math.sqrt(headDim));
        MemorySegment lastSeg = lastOut != null ? ws.asSlice(lastOff) : MemorySegment.NULL;
        int rc;
        try {
            rc = (int) windowAttention.invokeExact(ws.asSlice(qOff), window, queryHeads, headDim, firstHead,
                    groupHeads, ws.asSlice(kOff), rows, ws.asSlice(kpOff), ws.asSlice(qpOff), scale,
                    ws.asSlice(meanOff), lastSeg,
                    ws.asSlice(scratchOff));
        } catch (Throwable t) {
            throw new KvSlabException("kvs_policy_window_attention failed: " + t, t);
        }
        if (rc != 0) {
            throw new KvSlabException("kvs_policy_window_attention returned " + rc);
        }
        MemorySegment.copy(ws, JAVA_FLOAT, meanOff, meanOut, 0, (int) outLen);
        if (lastOut != null) {
            MemorySegment.copy(ws, JAVA_FLOAT, lastOff, lastOut, 0, (int) outLen);
        }
    }

    /**
     * Copies a layer's output projection off-heap for {@link #valueNorms}.
     *
     * @param weights {@code [modelDim][queryHeads * headDim]} row-major ({@code out = W_o x})
     */
    public OutputProjectionWeights uploadOutputProjection(float[] weights, int modelDim, int queryHeads,
                                                          int headDim) {
        checkOpen();
        positive("modelDim", modelDim);
        positive("queryHeads", queryHeads);
        positive("headDim", headDim);
        long len = elements("W_o", (long) modelDim * queryHeads * headDim);
        if (weights == null || weights.length != len) {
            throw new PolicyKernelException("W_o must hold modelDim * queryHeads * headDim = " + len
                    + " floats, got " + (weights == null ? "null" : weights.length));
        }
        return new OutputProjectionWeights(weights, modelDim, queryHeads, headDim);
    }

    /**
     * Checks one GQA group's query heads and the row count of a call over one GQA group's rows.
     *
     * @return false when there are no rows (nothing to compute)
     */
    private static boolean checkGroup(int queryHeads, int firstHead, int groupHeads, int rows) {
        positive("groupHeads", groupHeads);
        if (firstHead < 0 || firstHead > queryHeads - groupHeads) {
            throw new PolicyKernelException("query heads " + firstHead + ".." + ((long) firstHead + groupHeads - 1)
                    + " are outside 0.." + (queryHeads - 1));
        }
        if (rows < 0) {
            throw new PolicyKernelException("rows must be >= 0, got " + rows);
        }
        return rows > 0;
    }

    /**
     * For each query head {@code h} of the group and each row {@code t}: {@code out[h - firstHead][t] =
     * || values[t] . (W_o^h)^T ||_1}, the L1 norm of the row's value projected to the model's output space through
     * head h's slice of W_o.
     *
     * @param values     {@code [rows][headDim]}
     * @param rows       number of rows (0 returns at once)
     * @param wo         the layer's uploaded output projection; its headDim must equal this call's
     * @param firstHead  first query head of the group
     * @param groupHeads query heads in the group
     * @param out        receives {@code [groupHeads][rows]}
     */
    public void valueNorms(float[] values, int rows, OutputProjectionWeights wo, int firstHead, int groupHeads,
                           float[] out) {
        checkOpen();
        if (wo == null) {
            throw new PolicyKernelException("output-projection weights are required");
        }
        wo.segment(); // fails if the weights were closed
        int headDim = wo.headDim();
        int queryHeads = wo.queryHeads();
        int modelDim = wo.modelDim();
        if (!checkGroup(queryHeads, firstHead, groupHeads, rows)) {
            return;
        }
        long vLen = elements("values", (long) rows * headDim);
        long outLen = elements("outputs", (long) groupHeads * rows);
        atLeast("values", values, vLen);
        atLeast("out", out, outLen);
        if (!nativeKernels) {
            JavaPolicyKernels.valueNorms(values, rows, wo.rowMajor(), modelDim, queryHeads, headDim,
                    firstHead, groupHeads, out);
            return;
        }
        nativeValueNorms(values, rows, Math.min(rows, NORM_TILE), wo, firstHead, groupHeads, out);
    }

    /** The native L1 kernel over {@code rows} rows in sgemm tiles of {@code tile}; arguments already validated. */
    private void nativeValueNorms(float[] values, int rows, int tile, OutputProjectionWeights wo, int firstHead,
                                  int groupHeads, float[] out) {
        int headDim = wo.headDim();
        int modelDim = wo.modelDim();
        RowsWorkspace w = rowsWorkspace(values, (long) rows * headDim, (long) groupHeads * rows,
                (long) tile * modelDim);
        int rc;
        try {
            rc = (int) valueNorms.invokeExact(w.values(), rows, headDim, wo.segment(), modelDim, wo.rowStride(),
                    wo.headStride(), firstHead, groupHeads, w.out(), w.scratch(), tile);
        } catch (Throwable t) {
            throw new KvSlabException("kvs_policy_value_norms failed: " + t, t);
        }
        if (rc != 0) {
            throw new KvSlabException("kvs_policy_value_norms returned " + rc);
        }
        w.copyOut(out);
    }

    /**
     * {@code kvs_policy_value_norms_paired} over all {@code rows} rows (package-private: the tests compare it with a
     * plain-Java reference of the same arithmetic). Native only; {@code headDim} must be even.
     */
    void valueNormsPaired(float[] values, int rows, OutputProjectionWeights wo, int firstHead, int groupHeads,
                          float[] out) {
        checkOpen();
        if (!nativeKernels) {
            throw new PolicyKernelException("the paired-chain kernel needs libkvslab");
        }
        if (wo.headDim() % 2 != 0) {
            throw new PolicyKernelException("the paired-chain kernel needs an even headDim, got " + wo.headDim());
        }
        if (!checkGroup(wo.queryHeads(), firstHead, groupHeads, rows)) {
            return;
        }
        atLeast("values", values, elements("values", (long) rows * wo.headDim()));
        atLeast("out", out, elements("outputs", (long) groupHeads * rows));
        nativeValueNormsPaired(values, rows, wo, firstHead, groupHeads, out);
    }

    /**
     * The L1 norms as OpenBLAS's 4-row remainder kernel computes them ({@code kvs_policy_value_norms_paired}), for
     * the packed rows of that kind that a tall packed tile cannot hold; arguments already validated.
     */
    private void nativeValueNormsPaired(float[] values, int rows, OutputProjectionWeights wo, int firstHead,
                                        int groupHeads, float[] out) {
        int headDim = wo.headDim();
        RowsWorkspace w = rowsWorkspace(values, (long) rows * headDim, (long) groupHeads * rows, (long) headDim * 8);
        int rc;
        try {
            rc = (int) valueNormsPaired.invokeExact(w.values(), rows, headDim, wo.segment(), wo.modelDim(),
                    wo.rowStride(), wo.headStride(), firstHead, groupHeads, w.out(), w.scratch());
        } catch (Throwable t) {
            throw new KvSlabException("kvs_policy_value_norms_paired failed: " + t, t);
        }
        if (rc != 0) {
            throw new KvSlabException("kvs_policy_value_norms_paired returned " + rc);
        }
        w.copyOut(out);
    }

    /** The workspace of a per-row kernel: the rows' values copied in, then room for the outputs and the scratch. */
    private record RowsWorkspace(MemorySegment values, MemorySegment out, MemorySegment scratch, long outLen) {
        void copyOut(float[] dst) {
            MemorySegment.copy(out, JAVA_FLOAT, 0, dst, 0, (int) outLen);
        }
    }

    /** Lays out {@code vLen} value, {@code outLen} output and {@code scratchFloats} scratch floats (each aligned). */
    private RowsWorkspace rowsWorkspace(float[] values, long vLen, long outLen, long scratchFloats) {
        long outOff = align(vLen * Float.BYTES);
        long scratchOff = align(outOff + outLen * Float.BYTES);
        MemorySegment ws = workspace(align(scratchOff + scratchFloats * Float.BYTES));
        MemorySegment.copy(values, 0, ws, JAVA_FLOAT, 0, (int) vLen);
        return new RowsWorkspace(ws, ws.asSlice(outOff), ws.asSlice(scratchOff), outLen);
    }

    /**
     * The Gram matrices of every query head's slice of W_o, for {@link #valueL2Norms}: {@code G_h =
     * (W_o^h)^T W_o^h}, one fp32 sgemm per head ({@code queryHeads x headDim^2 x modelDim} multiply-adds:
     * compute once per W_o and reuse); the plain-Java fallback sums in double.
     *
     * @param weights {@code [modelDim][queryHeads * headDim]} row-major ({@code out = W_o x})
     */
    public OutputProjectionGram gram(float[] weights, int modelDim, int queryHeads, int headDim) {
        checkOpen();
        positive("modelDim", modelDim);
        positive("queryHeads", queryHeads);
        positive("headDim", headDim);
        long len = elements("W_o", (long) modelDim * queryHeads * headDim);
        elements("Gram matrices", (long) queryHeads * headDim * headDim);
        if (weights == null || weights.length != len) {
            throw new PolicyKernelException("W_o must hold modelDim * queryHeads * headDim = " + len
                    + " floats, got " + (weights == null ? "null" : weights.length));
        }
        if (!nativeKernels) {
            return OutputProjectionGram.inJava(weights, modelDim, queryHeads, headDim);
        }
        try (OutputProjectionWeights wo = new OutputProjectionWeights(weights, modelDim, queryHeads, headDim)) {
            return gram(wo);
        }
    }

    /** The native Gram matrices of weights already off-heap (in either layout: the test compares them). */
    OutputProjectionGram gram(OutputProjectionWeights wo) {
        checkOpen();
        int modelDim = wo.modelDim();
        int queryHeads = wo.queryHeads();
        int headDim = wo.headDim();
        int glen = queryHeads * headDim * headDim;
        float[] g = new float[glen];
        MemorySegment ws = workspace((long) glen * Float.BYTES);
        int rc;
        try {
            rc = (int) gram.invokeExact(wo.segment(), modelDim, wo.rowStride(), wo.headStride(), queryHeads, headDim,
                    ws);
        } catch (Throwable t) {
            throw new KvSlabException("kvs_policy_gram failed: " + t, t);
        }
        if (rc != 0) {
            throw new KvSlabException("kvs_policy_gram returned " + rc);
        }
        MemorySegment.copy(ws, JAVA_FLOAT, 0, g, 0, glen);
        return OutputProjectionGram.wrap(g, modelDim, queryHeads, headDim);
    }

    /**
     * For each query head {@code h} of the group and each row {@code t}: {@code out[h - firstHead][t] =
     * || values[t] . (W_o^h)^T ||_2 = sqrt(values[t]^T G_h values[t])}, the L2 norm of the row's value projected
     * through head h's slice of W_o, from its Gram matrix ({@code headDim^2} multiply-adds per row and head, one
     * sgemm of the rows with the group's matrices, then a dot product per row and head in double).
     *
     * @param values     {@code [rows][headDim]}
     * @param rows       number of rows (0 returns at once)
     * @param gram       the layer's Gram matrices; its headDim must equal this call's
     * @param firstHead  first query head of the group
     * @param groupHeads query heads in the group
     * @param out        receives {@code [groupHeads][rows]}
     */
    public void valueL2Norms(float[] values, int rows, OutputProjectionGram gram, int firstHead, int groupHeads,
                             float[] out) {
        checkOpen();
        if (gram == null) {
            throw new PolicyKernelException("output-projection Gram matrices are required");
        }
        int queryHeads = gram.queryHeads();
        if (!checkGroup(queryHeads, firstHead, groupHeads, rows)) {
            return;
        }
        int headDim = gram.headDim();
        long vLen = elements("values", (long) rows * headDim);
        long outLen = elements("outputs", (long) groupHeads * rows);
        atLeast("values", values, vLen);
        atLeast("out", out, outLen);
        if (!nativeKernels) {
            JavaPolicyKernels.valueL2Norms(values, rows, gram.matrices(), headDim, firstHead, groupHeads, out);
            return;
        }
        nativeValueL2Norms(values, rows, Math.min(rows, L2_TILE), gram, firstHead, groupHeads, out);
    }

    /** The native L2 kernel over {@code rows} rows in sgemm tiles of {@code tile}; arguments already validated. */
    private void nativeValueL2Norms(float[] values, int rows, int tile, OutputProjectionGram gram, int firstHead,
                                    int groupHeads, float[] out) {
        int headDim = gram.headDim();
        long vLen = (long) rows * headDim;
        long outLen = (long) groupHeads * rows;
        int gLen = groupHeads * headDim * headDim;
        long bytes = align(vLen * Float.BYTES);
        long gOff = bytes;
        bytes = align(bytes + (long) gLen * Float.BYTES);
        long outOff = bytes;
        bytes = align(bytes + outLen * Float.BYTES);
        long scratchOff = bytes;
        bytes = align(bytes + (long) tile * groupHeads * headDim * Float.BYTES);
        MemorySegment ws = workspace(bytes);
        MemorySegment.copy(values, 0, ws, JAVA_FLOAT, 0, (int) vLen);
        MemorySegment.copy(gram.matrices(), firstHead * headDim * headDim, ws, JAVA_FLOAT, gOff, gLen);
        int rc;
        try {
            rc = (int) valueL2Norms.invokeExact(ws, rows, headDim, ws.asSlice(gOff), groupHeads,
                    ws.asSlice(outOff), ws.asSlice(scratchOff), tile);
        } catch (Throwable t) {
            throw new KvSlabException("kvs_policy_value_l2_norms failed: " + t, t);
        }
        if (rc != 0) {
            throw new KvSlabException("kvs_policy_value_l2_norms returned " + rc);
        }
        MemorySegment.copy(ws, JAVA_FLOAT, outOff, out, 0, (int) outLen);
    }

    /**
     * {@link #valueNorms(float[], int, OutputProjectionWeights, int, int, float[])} for some rows only: {@code
     * out[h - firstHead][i]} is the norm of row {@code rowIndices[i]}, with the same bits as the whole call over
     * {@code rows} rows gives it. By the fused kernel where its decoded arithmetic reproduces the whole call (checked
     * once per geometry in this process; {@code -Dkvslab.policy.fusedNorms=false} turns it off), else the rows are
     * laid out as {@link RowPacking} says, checked the same way; where that does not reproduce the whole call either,
     * every row is computed.
     *
     * @param values     {@code [rows][headDim]}, all rows
     * @param rows       rows in {@code values}
     * @param rowIndices the rows wanted, strictly ascending in {@code [0, rows)}
     * @param out        receives {@code [groupHeads][rowIndices.length]}
     */
    public void valueNorms(float[] values, int rows, int[] rowIndices, OutputProjectionWeights wo, int firstHead,
                           int groupHeads, float[] out) {
        valueNorms(values, rows, rowIndices, wo, firstHead, groupHeads, out, FUSED_ENABLED);
    }

    /**
     * The subset call, with or without the fused kernel (package-private: the tests also run the OpenBLAS tiles'
     * layouts, which are the fallback wherever the fused kernel's check fails).
     */
    void valueNorms(float[] values, int rows, int[] rowIndices, OutputProjectionWeights wo, int firstHead,
                    int groupHeads, float[] out, boolean fusedAllowed) {
        checkOpen();
        if (wo == null) {
            throw new PolicyKernelException("output-projection weights are required");
        }
        int headDim = wo.headDim();
        if (!checkGroup(wo.queryHeads(), firstHead, groupHeads, rows)) {
            return;
        }
        atLeast("values", values, elements("values", (long) rows * headDim));
        checkRowIndices(rowIndices, rows);
        atLeast("out", out, (long) groupHeads * rowIndices.length);
        int count = rowIndices.length;
        if (!nativeKernels) { // the plain-Java kernel computes each row on its own
            valueNorms(RowPacking.gather(values, headDim, rowIndices), count, wo, firstHead, groupHeads, out);
            return;
        }
        RowKernel one = (v, n, tile, o) -> nativeValueNorms(v, n, tile, wo, firstHead, 1, o);
        // The fused kernel (no product in memory) where its decoded arithmetic reproduces the whole call
        if (fusedAllowed && fusedReproduces(headDim, wo.modelDim(), one,
                (v, n, some, o) -> nativeValueNormsFused(v, n, some, wo, firstHead, 1, o))) {
            nativeValueNormsFused(values, rows, rowIndices, wo, firstHead, groupHeads, out);
            return;
        }
        // Tall packed tiles with the paired-chain kernel where they reproduce the whole call, else 256-row ones
        boolean tall = headDim % 2 == 0 && packingReproduces("L1", headDim, wo.modelDim(), NORM_TILE,
                NORM_PACKED_TILE, 1, one, (v, n, tile, o) -> nativeValueNormsPaired(v, n, wo, firstHead, 1, o));
        boolean packs = tall || packingReproduces("L1", headDim, wo.modelDim(), NORM_TILE, NORM_TILE, 1, one, null);
        subset(values, rows, rowIndices, groupHeads, out, headDim, NORM_TILE, tall ? NORM_PACKED_TILE : NORM_TILE,
                packs, (v, n, tile, o) -> nativeValueNorms(v, n, tile, wo, firstHead, groupHeads, o),
                tall ? (v, n, tile, o) -> nativeValueNormsPaired(v, n, wo, firstHead, groupHeads, o) : null);
    }

    /**
     * {@link #valueL2Norms(float[], int, OutputProjectionGram, int, int, float[])} for some rows only, with the
     * whole call's bits (see {@link #valueNorms(float[], int, int[], OutputProjectionWeights, int, int, float[])}).
     */
    public void valueL2Norms(float[] values, int rows, int[] rowIndices, OutputProjectionGram gram, int firstHead,
                             int groupHeads, float[] out) {
        checkOpen();
        if (gram == null) {
            throw new PolicyKernelException("output-projection Gram matrices are required");
        }
        int headDim = gram.headDim();
        if (!checkGroup(gram.queryHeads(), firstHead, groupHeads, rows)) {
            return;
        }
        atLeast("values", values, elements("values", (long) rows * headDim));
        checkRowIndices(rowIndices, rows);
        atLeast("out", out, (long) groupHeads * rowIndices.length);
        int count = rowIndices.length;
        if (!nativeKernels) {
            valueL2Norms(RowPacking.gather(values, headDim, rowIndices), count, gram, firstHead, groupHeads, out);
            return;
        }
        RowKernel kernel = (v, n, tile, o) -> nativeValueL2Norms(v, n, tile, gram, firstHead, groupHeads, o);
        boolean packs = packingReproduces("L2", headDim, groupHeads * headDim, L2_TILE, L2_TILE, groupHeads, kernel,
                null);
        subset(values, rows, rowIndices, groupHeads, out, headDim, L2_TILE, L2_TILE, packs, kernel, null);
    }

    /** Rows per group of the fused kernel: each group is of one slot kind, so each kind's rows are padded to it. */
    static final int FUSED_ROWS = 16;

    /**
     * The decoded arithmetic of the norm product per slot kind and output ({@code kvs_policy_l1_chain_masks} at
     * {@link #NORM_TILE}-row tiles), once per geometry and process; an empty array when the build computes it some
     * other way (then the fused kernel is not used).
     */
    private static final ConcurrentHashMap<String, byte[]> CHAIN_MASKS = new ConcurrentHashMap<>();

    private byte[] chainMasks(int headDim, int modelDim) {
        return CHAIN_MASKS.computeIfAbsent(headDim + "x" + modelDim, k -> {
            if (headDim % 2 != 0) {
                return new byte[0];
            }
            MemorySegment ws = workspace(4L * modelDim);
            int rc;
            try {
                rc = (int) chainMasks.invokeExact(modelDim, headDim, NORM_TILE, ws);
            } catch (Throwable t) {
                throw new KvSlabException("kvs_policy_l1_chain_masks failed: " + t, t);
            }
            return rc == 0 ? ws.asSlice(0, 4L * modelDim).toArray(JAVA_BYTE)
                    : new byte[0];
        });
    }

    /**
     * The L1 norms of some rows with {@code kvs_policy_value_norms_fused}: each wanted row gets the slot kind it has
     * in the whole call over {@code rows} rows ({@link #NORM_TILE}-row tiles, {@link RowPacking#kind}), the rows are
     * gathered kind by kind (each kind padded to {@link #FUSED_ROWS} with zero rows) and computed with that kind's
     * arithmetic. Arguments already validated; the masks must have decoded (see {@link #fusedReproduces}).
     */
    private void nativeValueNormsFused(float[] values, int rows, int[] rowIndices, OutputProjectionWeights wo,
                                       int firstHead, int groupHeads, float[] out) {
        int headDim = wo.headDim();
        int modelDim = wo.modelDim();
        byte[] masks = chainMasks(headDim, modelDim);
        int count = rowIndices.length;
        int[] kinds = new int[count];
        int[] ends = new int[4];
        for (int i = 0; i < count; i++) {
            int r = rowIndices[i];
            int t0 = r / NORM_TILE * NORM_TILE;
            kinds[i] = RowPacking.kind(r - t0, Math.min(NORM_TILE, rows - t0));
            ends[kinds[i]]++;
        }
        int at = 0;
        int[] next = new int[4];
        for (int kd = 0; kd < 4; kd++) {
            next[kd] = at;
            at += (ends[kd] + FUSED_ROWS - 1) / FUSED_ROWS * FUSED_ROWS;
            ends[kd] = at;
        }
        int n = at;
        int[] slot = new int[count];
        for (int i = 0; i < count; i++) {
            slot[i] = next[kinds[i]]++;
        }
        long vLen = elements("values", (long) n * headDim);
        long outLen = elements("outputs", (long) groupHeads * n);
        long outOff = align(vLen * Float.BYTES);
        long endsOff = align(outOff + outLen * Float.BYTES);
        long masksOff = align(endsOff + 4L * Integer.BYTES);
        long scratchOff = align(masksOff + 4L * modelDim);
        MemorySegment ws = workspace(align(scratchOff + (2L * headDim * FUSED_ROWS + 8) * Float.BYTES));
        for (int kd = 0; kd < 4; kd++) { // the pad rows: zeros
            long from = (long) next[kd] * headDim * Float.BYTES;
            ws.asSlice(from, (long) ends[kd] * headDim * Float.BYTES - from).fill((byte) 0);
        }
        for (int i = 0; i < count; i++) {
            MemorySegment.copy(values, rowIndices[i] * headDim, ws, JAVA_FLOAT, (long) slot[i] * headDim * Float.BYTES,
                    headDim);
        }
        MemorySegment.copy(ends, 0, ws, JAVA_INT, endsOff, 4);
        MemorySegment.copy(masks, 0, ws, JAVA_BYTE, masksOff, masks.length);
        int rc;
        try {
            rc = (int) valueNormsFused.invokeExact(ws, n, headDim, wo.segment(), modelDim, wo.rowStride(),
                    wo.headStride(), firstHead, groupHeads, ws.asSlice(endsOff), ws.asSlice(masksOff),
                    ws.asSlice(outOff), ws.asSlice(scratchOff));
        } catch (Throwable t) {
            throw new KvSlabException("kvs_policy_value_norms_fused failed: " + t, t);
        }
        if (rc != 0) {
            throw new KvSlabException("kvs_policy_value_norms_fused returned " + rc);
        }
        for (int h = 0; h < groupHeads; h++) {
            for (int i = 0; i < count; i++) {
                out[h * count + i] = ws.get(JAVA_FLOAT, outOff + ((long) h * n + slot[i]) * Float.BYTES);
            }
        }
    }

    /**
     * {@link #valueNorms(float[], int, int[], OutputProjectionWeights, int, int, float[])} through the fused kernel
     * (package-private: the tests compare it with the whole call and the other layouts). Native only, even headDim,
     * and the build's arithmetic must have decoded; otherwise throws.
     */
    void valueNormsFused(float[] values, int rows, int[] rowIndices, OutputProjectionWeights wo, int firstHead,
                         int groupHeads, float[] out) {
        checkOpen();
        if (!nativeKernels || chainMasks(wo.headDim(), wo.modelDim()).length == 0) {
            throw new PolicyKernelException("the fused kernel needs libkvslab, an even headDim and a BLAS build whose"
                    + " norm product decodes as one or two FMA chains per element");
        }
        if (!checkGroup(wo.queryHeads(), firstHead, groupHeads, rows)) {
            return;
        }
        atLeast("values", values, elements("values", (long) rows * wo.headDim()));
        checkRowIndices(rowIndices, rows);
        atLeast("out", out, (long) groupHeads * rowIndices.length);
        nativeValueNormsFused(values, rows, rowIndices, wo, firstHead, groupHeads, out);
    }

    /** A native kernel over some rows: {@code out [heads][some.length]} for the rows {@code some} of {@code n}. */
    @FunctionalInterface
    private interface SubsetKernel {
        void run(float[] values, int n, int[] some, float[] out);
    }

    /**
     * Whether the fused kernel gives the whole call's bits for this geometry: the masks decoded, and a fixed
     * pseudo-random probe of four {@link #NORM_TILE}-row tiles and a 20-row tile (so every slot kind occurs), a
     * subset of about 60% of its rows, compared bit for bit. Checked once per geometry and process.
     */
    private boolean fusedReproduces(int headDim, int modelDim, RowKernel whole, SubsetKernel fused) {
        if (chainMasks(headDim, modelDim).length == 0) {
            return false;
        }
        return PACKING.computeIfAbsent("L1:" + headDim + "x" + modelDim + ":fused", k -> {
            int n = 4 * NORM_TILE + 20;
            ProbeRows probe = ProbeRows.of(n, headDim);
            float[] v = probe.values();
            int[] some = probe.subset();
            float[] all = new float[n];
            whole.run(v, n, NORM_TILE, all);
            float[] part = new float[some.length];
            fused.run(v, n, some, part);
            for (int i = 0; i < some.length; i++) {
                if (Float.floatToRawIntBits(part[i]) != Float.floatToRawIntBits(all[some[i]])) {
                    return false;
                }
            }
            return true;
        });
    }

    /**
     * The fixed pseudo-random input of the bit-for-bit checks: {@code n} rows of {@code headDim} values (magnitudes
     * varying by row) and a subset of about 60% of them; the same for every check and process.
     */
    private record ProbeRows(float[] values, int[] subset) {
        static ProbeRows of(int n, int headDim) {
            SplittableRandom rnd = new SplittableRandom(0x5EED);
            float[] v = new float[n * headDim];
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) (rnd.nextDouble() * 2 - 1) * (1 + (i / headDim) % 5);
            }
            return new ProbeRows(v, IntStream.range(0, n).filter(r -> rnd.nextDouble() < 0.6).toArray());
        }
    }

    /**
     * System property: {@code false} keeps the subset L1 norms on the OpenBLAS tiles (for A/B comparisons); the
     * fused kernel is used by default wherever its check passes.
     */
    static final String FUSED_PROPERTY = "kvslab.policy.fusedNorms";
    private static final boolean FUSED_ENABLED = !"false".equals(System.getProperty(FUSED_PROPERTY));

    /** A native per-row kernel: {@code out [heads][n]} for {@code n} rows of {@code values} in tiles of {@code tile}. */
    @FunctionalInterface
    private interface RowKernel {
        void run(float[] values, int n, int tile, float[] out);
    }

    /** Geometries for which {@link RowPacking} reproduced the whole call in this process (checked once each). */
    private static final ConcurrentHashMap<String, Boolean> PACKING = new ConcurrentHashMap<>();

    /** Whether {@link RowPacking} reproduced the whole call for each geometry checked so far (for tests). */
    static Map<String, Boolean> packingChecks() {
        return Map.copyOf(PACKING);
    }

    /**
     * Whether a packed subset gets the whole call's bits for this geometry: a fixed pseudo-random probe of two full
     * packed tiles and a 19-row tile, a subset of about 60% of its rows, compared bit for bit. With a {@code paired}
     * kernel, the subset is packed in tiles of {@code packedTile} rows and the 4-row kind's overflow goes to it.
     */
    private static boolean packingReproduces(String kind, int headDim, int width, int tile, int packedTile,
                                             int heads, RowKernel kernel, RowKernel paired) {
        return PACKING.computeIfAbsent(kind + ":" + headDim + "x" + width + (paired != null ? ":" + packedTile : ""),
                k -> {
            int n = 2 * packedTile + 19;
            ProbeRows probe = ProbeRows.of(n, headDim);
            float[] v = probe.values();
            int[] some = probe.subset();
            float[] whole = new float[heads * n];
            kernel.run(v, n, Math.min(n, tile), whole);
            int c = some.length;
            float[] part = new float[heads * c];
            packed(v, n, some, heads, part, headDim, tile, packedTile, kernel, paired);
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < c; i++) {
                    if (Float.floatToRawIntBits(part[h * c + i]) != Float.floatToRawIntBits(whole[h * n + some[i]])) {
                        return false;
                    }
                }
            }
            return true;
        });
    }

    private static void subset(float[] values, int rows, int[] rowIndices, int heads, float[] out, int headDim,
                               int tile, int packedTile, boolean packs, RowKernel kernel, RowKernel paired) {
        if (packs) {
            packed(values, rows, rowIndices, heads, out, headDim, tile, packedTile, kernel, paired);
            return;
        }
        float[] all = new float[heads * rows]; // every row, as before
        kernel.run(values, rows, Math.min(rows, tile), all);
        int count = rowIndices.length;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < count; i++) {
                out[h * count + i] = all[h * rows + rowIndices[i]];
            }
        }
    }

    /**
     * The subset as {@link RowPacking} lays it out: one call for the packed tiles, one per odd tail, and (with a
     * {@code paired} kernel) one for the 4-row kind's rows the packed tiles could not hold.
     */
    private static void packed(float[] values, int rows, int[] rowIndices, int heads, float[] out, int headDim,
                               int tile, int packedTile, RowKernel kernel, RowKernel paired) {
        RowPacking.Plan plan = RowPacking.plan(rowIndices, rows, tile, packedTile, paired != null);
        float[] byRow = new float[heads * rows]; // [head][row], filled at the wanted rows
        scatter(plan.packed(), plan.packedTile(), values, headDim, heads, rows, byRow, kernel);
        for (int[] tail : plan.tails()) {
            scatter(RowPacking.tailRows(tail), tail[1], values, headDim, heads, rows, byRow, kernel);
        }
        if (plan.paired().length > 0) {
            scatter(plan.paired(), plan.paired().length, values, headDim, heads, rows, byRow, paired);
        }
        int count = rowIndices.length;
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < count; i++) {
                out[h * count + i] = byRow[h * rows + rowIndices[i]];
            }
        }
    }

    private static void scatter(int[] source, int tile, float[] values, int headDim, int heads, int rows,
                                float[] byRow, RowKernel kernel) {
        int m = source.length;
        if (m == 0) {
            return;
        }
        float[] got = new float[heads * m];
        kernel.run(RowPacking.gather(values, headDim, source), m, Math.min(m, tile), got);
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < m; i++) {
                if (source[i] >= 0) {
                    byRow[h * rows + source[i]] = got[h * m + i];
                }
            }
        }
    }

    private static void checkRowIndices(int[] rowIndices, int rows) {
        if (rowIndices == null) {
            throw new PolicyKernelException("row indices are required");
        }
        for (int i = 0; i < rowIndices.length; i++) {
            int r = rowIndices[i];
            if (r < 0 || r >= rows || (i > 0 && r <= rowIndices[i - 1])) {
                throw new PolicyKernelException("row indices must be strictly ascending in [0, " + rows
                        + "); index " + i + " holds " + r);
            }
        }
    }

    /** Frees the workspace. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (arena != null) {
                arena.close();
                arena = null;
                workspace = null;
            }
        }
    }

    private MemorySegment workspace(long bytes) {
        if (workspace == null || workspace.byteSize() < bytes) {
            long size = Math.max(bytes, workspace == null ? 1L << 16 : workspace.byteSize() * 2);
            Arena fresh = Arena.ofShared(); // a Compressor may move between threads between calls
            MemorySegment seg = fresh.allocate(size, 64);
            if (arena != null) {
                arena.close();
            }
            arena = fresh;
            workspace = seg;
        }
        return workspace;
    }

    private void checkOpen() {
        if (closed) {
            throw new PolicyKernelException("this PolicyKernels was closed; create a new one");
        }
    }

    private static long align(long bytes) {
        return (bytes + 63) & ~63L;
    }

    private static void positive(String name, int v) {
        if (v < 1) {
            throw new PolicyKernelException(name + " must be >= 1, got " + v);
        }
    }

    private static long elements(String what, long n) {
        if (n > MAX_ELEMENTS) {
            throw new PolicyKernelException(what + " would need " + n + " elements; at most " + MAX_ELEMENTS
                    + " are allowed per call (split the call)");
        }
        return n;
    }

    private static void atLeast(String name, float[] a, long n) {
        if (a == null || a.length < n) {
            throw new PolicyKernelException(name + " must hold at least " + n + " floats, got "
                    + (a == null ? "null" : a.length));
        }
    }

    private static void atLeast(String name, long[] a, long n) {
        if (a == null || a.length < n) {
            throw new PolicyKernelException(name + " must hold at least " + n + " longs, got "
                    + (a == null ? "null" : a.length));
        }
    }

    private static void ascending(String name, long[] a, int n) {
        for (int i = 1; i < n; i++) {
            if (a[i] <= a[i - 1]) {
                throw new PolicyKernelException(name + " must be strictly ascending; index " + i + " holds " + a[i]
                        + " after " + a[i - 1]);
            }
        }
    }
}
