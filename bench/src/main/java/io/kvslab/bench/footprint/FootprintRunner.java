package io.kvslab.bench.footprint;

import io.kvslab.bench.report.ProcessMemory;

import io.kvslab.bench.geometry.ModelGeometry;
import io.kvslab.bench.geometry.SlabMath;

import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.stress.StructuredKv;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.StoreStats;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Runs the footprint matrix: for each model x context x dtype x policy, either fills a real store with synthetic
 * K/V, compresses, compacts and reads its accounting, or, when the dense fill would not fit under the memory limit,
 * computes the row with {@link FootprintModel}.
 */
public final class FootprintRunner {
    /** Floats per fill chunk array (K or V): large chunks keep per-call overhead negligible. */
    private static final int CHUNK_FLOATS = 1 << 22;

    /**
     * @param models         geometries
     * @param contexts       context lengths in tokens
     * @param dtypes         stored element types of K and V rows (one type for both, or a K/V pair)
     * @param policies       compression policies
     * @param limitBytes     memory limit of the measured stores; rows whose dense fill exceeds it are analytic
     * @param slabBytes      slab size
     * @param tokensPerBlock rows per block
     * @param seed           synthetic data seed
     */
    public record Config(List<ModelGeometry> models, List<Integer> contexts, List<KvDtypes> dtypes,
                         List<FootprintPolicy> policies, long limitBytes, long slabBytes, int tokensPerBlock,
                         long seed) {
        public Config {
            if (models.isEmpty() || contexts.isEmpty() || dtypes.isEmpty() || policies.isEmpty()) {
                throw new IllegalArgumentException("models, contexts, dtypes and policies must each name at least one");
            }
            for (int c : contexts) {
                if (c < 1) {
                    throw new IllegalArgumentException("context lengths must be >= 1 token, got " + c);
                }
            }
        }

        StoreConfig storeConfig() {
            return new StoreConfig(limitBytes, slabBytes);
        }
    }

    private final Config config;
    private final Map<KvLayout, StructuredKv> synthetic = new HashMap<>();

    public FootprintRunner(Config config) {
        this.config = config;
    }

    /** Runs every row, reporting each to {@code onRow} as it completes. */
    public List<FootprintRow> run(Consumer<FootprintRow> onRow) {
        List<FootprintRow> rows = new ArrayList<>();
        for (ModelGeometry m : config.models()) {
            for (int ctx : config.contexts()) {
                for (KvDtypes dt : config.dtypes()) {
                    for (FootprintPolicy p : config.policies()) {
                        FootprintRow r = fits(m, ctx, dt) ? measure(m, ctx, dt, p) : analytic(m, ctx, dt, p);
                        rows.add(r);
                        onRow.accept(r);
                    }
                }
            }
        }
        return rows;
    }

    /** Whether the dense fill of this context fits under the limit (compression comes after filling). */
    public boolean fits(ModelGeometry m, int ctx, KvDtypes dt) {
        KvLayout layout = layout(m, dt);
        long blocks = 2 * (FootprintModel.dense(layout, config.storeConfig(), ctx).liveBytes()
                / layout.blockPairBytes());
        if (!layout.uniformDtype()) {
            // two block sizes, two slab classes: whole slabs of each under the limit surely fit (a fill that would
            // need the allocator's cut-down last slabs is computed instead of measured)
            return SlabMath.reservedFor(layout, config.storeConfig(), blocks) <= config.limitBytes();
        }
        return SlabMath.fitsUnderLimit(layout, config.storeConfig(), blocks);
    }

    /** The row computed without allocating. */
    public FootprintRow analytic(ModelGeometry m, int ctx, KvDtypes dt, FootprintPolicy p) {
        KvLayout layout = layout(m, dt);
        FootprintModel.Estimate e = FootprintModel.estimate(layout, config.storeConfig(),
                FootprintModel.keptRows(layout, p, ctx));
        double perHead = (double) e.keptRows() / ((long) layout.layers() * layout.kvHeads());
        return new FootprintRow(m.name(), ctx, dt, rowPairBytes(layout), p.name(), perHead, e.theoreticalBytes(), e.liveBytes(),
                e.reservedBytes(), e.reservedBytes(), false, p.analyticKind(), 0, -1, -1);
    }

    /**
     * Fills a real store with {@code ctx} synthetic tokens in every layer, compresses, compacts, and reads the
     * accounting. Closes the store and fails if it reports a leak.
     */
    public FootprintRow measure(ModelGeometry m, int ctx, KvDtypes dt, FootprintPolicy p) {
        KvLayout layout = layout(m, dt);
        StructuredKv gen = synthetic.computeIfAbsent(layout, l -> new StructuredKv(l, config.seed(),
                StructuredKv.Shape.realistic()));
        long start = System.nanoTime();
        long rows = 0;
        long live;
        long held;
        long reserved;
        ProcessMemory process;
        try (KvStore store = KvStore.open(layout, config.storeConfig())) {
            try (Sequence s = store.newSequence()) {
                fill(s, gen, ctx);
                p.compress(s, gen);
                held = store.stats().reservedBytes();
                store.compact();
                StoreStats st = store.stats();
                live = st.liveBytes();
                reserved = st.reservedBytes();
                process = ProcessMemory.now();
                for (int l = 0; l < layout.layers(); l++) {
                    for (int h = 0; h < layout.kvHeads(); h++) {
                        rows += s.length(l, h);
                    }
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        double perHead = (double) rows / ((long) layout.layers() * layout.kvHeads());
        return new FootprintRow(m.name(), ctx, dt, rowPairBytes(layout), p.name(), perHead,
                rows * rowPairBytes(layout), live, held,
                reserved, true, "measured", seconds, process.rssBytes(), process.hwmBytes());
    }

    /** The geometry's store layout with these K and V types. */
    private KvLayout layout(ModelGeometry m, KvDtypes dt) {
        return m.layout(dt.key(), config.tokensPerBlock()).withDtypes(dt.key(), dt.value());
    }

    /** Bytes of one K row plus one V row of a (layer, KV head): what one token costs there. */
    static long rowPairBytes(KvLayout layout) {
        return layout.keyRowBytes() + layout.valueRowBytes();
    }

    /** Appends {@code ctx} tokens (positions 0..ctx-1) to every layer in large chunks. */
    static void fill(Sequence s, StructuredKv gen, int ctx) {
        KvLayout layout = s.layout();
        int width = layout.kvHeads() * layout.headDim();
        int chunk = Math.max(1, Math.min(ctx, CHUNK_FLOATS / width));
        float[] k = new float[chunk * width];
        float[] v = new float[chunk * width];
        for (int l = 0; l < layout.layers(); l++) {
            for (int from = 0; from < ctx; from += chunk) {
                int n = Math.min(chunk, ctx - from);
                long[] pos = new long[n];
                for (int i = 0; i < n; i++) {
                    pos[i] = from + i;
                }
                if (n != chunk) {
                    k = new float[n * width];
                    v = new float[n * width];
                }
                gen.keys(0, l, pos, k);
                gen.values(0, l, pos, v);
                s.appendChunk(l, k, v, pos);
            }
        }
    }
}
