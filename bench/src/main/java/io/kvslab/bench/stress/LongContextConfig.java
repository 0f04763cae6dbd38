package io.kvslab.bench.stress;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.StoreConfig;
import io.kvslab.bench.geometry.ModelGeometry;
import io.kvslab.bench.geometry.SlabMath;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Policies;

/**
 * What one long-context stress run streams and how it compresses, and the memory bounds that follow from it (see
 * {@link LongContextStress}).
 *
 * @param model           geometry (use {@link ModelGeometry#withLayers} for a layer subset)
 * @param dtype           stored element types of K and V rows
 * @param tokensPerBlock  rows per block
 * @param slabBytes       slab size
 * @param tokens          tokens to stream
 * @param budget          rows per (layer, KV head) after each compression
 * @param interval        rows accumulated beyond the budget before compressing
 * @param sinks           leading rows always kept
 * @param chunk           tokens appended per call (1 = decoding one token at a time)
 * @param attentionEvery  run a decode-attention step every this many tokens (0 = never)
 * @param checkEvery      compare one layer's attention with the reference every this many attention steps
 * @param seed            synthetic data seed
 * @param policy          {@code window} (the sinks + recent stand-in) or a name of {@link Policies#NAMES}
 *                        except dynamic-budget ones
 */
public record LongContextConfig(ModelGeometry model, KvDtypes dtype, int tokensPerBlock, long slabBytes, long tokens, int budget,
                     int interval, int sinks, int chunk, int attentionEvery, int checkEvery, long seed,
                     String policy) {
    public LongContextConfig {
        if (policy == null) {
            throw new IllegalArgumentException("policy must be one of " + Policies.NAMES);
        }
        CompressionPolicy p;
        try {
            p = Policies.byName(policy);
        } catch (KvArgumentException e) {
            throw new IllegalArgumentException("policy must be one of " + Policies.NAMES + ", got '" + policy
                    + "'");
        }
        if (p.dynamicBudget()) {
            throw new IllegalArgumentException(policy + " chooses its own budget, so no memory bound can be "
                    + "stated for it; use a fixed-budget policy (" + Policies.NAMES + " except dbudgetkv)");
        }
        if (tokens < 1 || budget < 1 || interval < 1 || sinks < 0 || sinks > budget || chunk < 1
                || attentionEvery < 0 || checkEvery < 1 || tokensPerBlock < 1 || slabBytes < 1) {
            throw new IllegalArgumentException("long-context stress needs tokens, budget, interval, chunk, "
                    + "checkEvery, tokensPerBlock, slabBytes >= 1, 0 <= sinks <= budget, attentionEvery >= 0");
        }
        if ((long) budget + interval + chunk > Integer.MAX_VALUE / 2) {
            throw new IllegalArgumentException("budget + interval + chunk must stay below 2^30 rows");
        }
    }

    public KvLayout layout() {
        return model.layout(dtype.key(), tokensPerBlock).withDtypes(dtype.key(), dtype.value());
    }

    /** The policy package's policy (StreamingLLM with {@code sinks}). */
    public CompressionPolicy libraryPolicy() {
        CompressionPolicy p = Policies.byName(policy);
        return p.name().equals("streamingllm") ? Policies.streamingLlm(sinks) : p;
    }

    /** Whether every head of every layer gets the same budget (so each head is bounded by itself). */
    public boolean uniformBudgets() {
        return uniformLayers() && uniformHeads();
    }

    /** Whether every layer gets the same per-head budget (false for PyramidKV). */
    public boolean uniformLayers() {
        CompressionPolicy p = libraryPolicy();
        return p == null || p.uniformLayers();
    }

    /** Whether every head of a layer gets the same budget (false for Ada-KV allocations). */
    public boolean uniformHeads() {
        CompressionPolicy p = libraryPolicy();
        return p == null || p.uniformHeads();
    }

    /**
     * Most rows one head keeps after a compression: the budget, or for PyramidKV twice the budget (its bottom
     * layer keeps {@code w + 2(B - w) - min}; with decoding-time compression the layers' lengths differ and the
     * pyramid no longer sums to the uniform total, so only this per-head cap holds).
     */
    public int keptRowsCap() {
        return uniformLayers() ? budget : 2 * budget;
    }

    /** Whether compression keeps exactly the sinks and the newest rows. */
    public boolean sinksAndRecent() {
        return policy.equalsIgnoreCase("streamingllm");
    }

    /**
     * Most rows one head can hold (just before a compression); with head-wise budgets this bounds the mean over
     * the heads of a layer instead.
     */
    public int maxRowsPerHead() {
        return keptRowsCap() + interval + chunk - 1;
    }

    /** Live-byte bound: every head at {@link #maxRowsPerHead()} rows, whole blocks. */
    public long liveBoundBytes() {
        return SlabMath.bytesOfBlocks(layout(), boundBlocks());
    }

    /** Reserved-byte bound: the live bound rounded up to whole slabs. */
    public long reservedBoundBytes() {
        return SlabMath.reservedFor(layout(), storeConfig(Long.MAX_VALUE), boundBlocks());
    }

    private long boundBlocks() {
        KvLayout l = layout();
        if (uniformHeads()) {
            long perHead = (maxRowsPerHead() + l.tokensPerBlock() - 1) / l.tokensPerBlock();
            return 2L * l.layers() * l.kvHeads() * perHead;
        }
        // Ada-KV moves budget between the heads of a layer but keeps the layer's total (it only clamps down).
        long layerRows = (long) l.kvHeads() * maxRowsPerHead();
        return 2L * l.layers() * ((layerRows + l.tokensPerBlock() - 1) / l.tokensPerBlock() + l.kvHeads());
    }

    StoreConfig storeConfig(long limit) {
        return new StoreConfig(limit, slabBytes);
    }
}
