package io.kvslab.bench.stress;

import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.ReferenceAttention;

import io.kvslab.bench.geometry.ModelGeometry;
import io.kvslab.DType;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LongContextStressTest {
    private static final ModelGeometry SMALL = new ModelGeometry("small", 2, 4, 2, 32);

    private static LongContextConfig config(DType dtype, int chunk, int attentionEvery) {
        return config(dtype, chunk, attentionEvery, "streamingllm");
    }

    private static LongContextConfig config(DType dtype, int chunk, int attentionEvery, String policy) {
        return config(KvDtypes.both(dtype), chunk, attentionEvery, policy);
    }

    private static LongContextConfig config(KvDtypes dtype, int chunk, int attentionEvery, String policy) {
        return new LongContextConfig(SMALL, dtype, 8, 16 * 1024, 3000, 256, 100, 4, chunk, attentionEvery, 2,
                11, policy);
    }

    @Test
    void tokenByTokenStreamingHoldsEveryInvariantAndReachesTheStatedBound() {
        LongContextResult r = new LongContextStress(config(DType.F16, 1, 50), new ReferenceAttention(),
                null).run();
        assertTrue(r.ok(), r.summary());
        assertEquals(3000, r.tokens());
        // Compress when a head reaches 256 + 100 rows (token 356), then every 100 tokens: 356, 456, ..., 2956.
        assertEquals(27, r.compressions());
        assertEquals(27, r.contentChecks());
        assertEquals(60, r.attentionSteps());           // tokens 50, 100, ..., 3000
        assertEquals(30, r.attentionChecks());          // every 2nd step
        // The bound is tight: 356 rows per head = 45 blocks of 8 rows, x 2 layers x 2 heads x K/V, 512-byte blocks.
        long bound = 45L * 2 * 2 * 2 * 8 * 32 * 2;
        assertEquals(bound, r.liveBoundBytes());
        assertEquals(bound, r.peakLiveBytes());
        assertTrue(r.peakReservedBytes() <= r.reservedBoundBytes());
        assertEquals(0, r.finalReservedBytes());
    }

    @Test
    void theNativeKernelAgreesWithTheReferenceThroughoutTheStream() {
        try (PerThreadKernelAttention kernel = new PerThreadKernelAttention(2)) {
            LongContextResult r = new LongContextStress(config(DType.F16, 1, 25), kernel, null).run();
            assertTrue(r.ok(), r.summary());
            assertEquals(120, r.attentionSteps());
            assertEquals(60, r.attentionChecks());
            assertTrue(r.maxAttentionError() < LongContextStress.ATTENTION_TOLERANCE, r.summary());
            assertTrue(r.attention().startsWith("native kernel"));
        }
    }

    /**
     * Scoring policies (window-protected, head-wise Ada-KV, pyramid layer budgets, CriticalKV with a synthetic W_o)
     * under decoding-time compression: subsets, protected windows, budgets and the (looser) bound all hold.
     */
    @Test
    void scoringPoliciesHoldTheirInvariantsAndTheBound() {
        for (String p : new String[] {"snapkv", "adakv", "pyramidkv", "criticaladakv", "knorm"}) {
            LongContextConfig c = new LongContextConfig(SMALL, KvDtypes.F32, 8, 16 * 1024, 1200, 200, 100,
                    4, 3, 300, 1, 5, p);
            LongContextResult r = new LongContextStress(c, new ReferenceAttention(), null).run();
            assertTrue(r.ok(), r.summary());
            assertEquals(9, r.compressions(), p);   // tokens 300, 402, 504, ..., 1116 (chunks of 3 overshoot)
            assertTrue(r.peakLiveBytes() <= r.liveBoundBytes(), p);
            // Uniform budgets: every head <= 302 rows = 38 blocks. Ada-KV: each layer's 2 heads <= 604 rows = 76
            // blocks + 2 partial ones. PyramidKV: every head <= 2 x 200 + 102 = 502 rows = 63 blocks.
            long blockBytes = 8 * 32 * 4;
            long expected = switch (p) {
                case "adakv", "criticaladakv" -> 2L * 2 * (76 + 2) * blockBytes;
                case "pyramidkv" -> 2L * 2 * 2 * 63 * blockBytes;
                default -> 2L * 2 * 2 * 38 * blockBytes;
            };
            assertEquals(expected, r.liveBoundBytes(), p);
        }
        assertThrows(IllegalArgumentException.class, () -> config(DType.F32, 1, 0, "dbudgetkv"));
        assertThrows(IllegalArgumentException.class, () -> config(DType.F32, 1, 0, "h2o"));
    }

    @Test
    void kAndVOfDifferentTypesHoldTheInvariantsAndTheBoundCountsEachSide() {
        // K q8_0 (head dim 32: one group, 32 bytes + a 2-byte scale = 34 bytes/row), V q4_0 (16 + 2 = 18 bytes/row)
        LongContextResult r = new LongContextStress(config(new KvDtypes(DType.Q8_0, DType.Q4_0), 7, 50,
                "streamingllm"), new ReferenceAttention(), null).run();
        assertTrue(r.ok(), r.summary());
        assertTrue(r.attentionSteps() > 0 && r.peakLiveBytes() <= r.liveBoundBytes(), r.summary());
        // 362 rows = 46 blocks of 8 rows per (layer, KV head), 2 layers x 2 KV heads, a K block and a V block each
        assertEquals(46L * 2 * 2 * 8 * (34 + 18), r.liveBoundBytes());
    }

    @Test
    void chunkedStreamingInOtherDtypesHoldsTheInvariants() {
        // F16 chunks go through the f16 tensor path (appendChunk of f16 tensors), the others through floats.
        for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            LongContextResult r = new LongContextStress(config(dt, 7, 0), new ReferenceAttention(), null)
                    .run();
            assertTrue(r.ok(), r.summary());
            assertEquals(0, r.attentionSteps());
            assertTrue(r.peakLiveBytes() <= r.liveBoundBytes());
            // A chunk may overshoot the trigger by up to chunk - 1 rows: 362 rows = 46 blocks per head.
            assertEquals(46L * 8 * 8 * 32 * dt.bytes(), r.liveBoundBytes());
        }
    }

    /** The attention check is live: a backend whose output is off by a factor of two is caught every time. */
    @Test
    void aWrongSequenceAttentionIsReportedAsAViolation() {
        SequenceAttention halved = new SequenceAttention() {
            @Override
            public String name() {
                return "halved";
            }

            @Override
            public void decode(Sequence s, int layer, float[] q, float[] out) {
                new ReferenceAttention().decode(s, layer, q, out);
                for (int i = 0; i < out.length; i++) {
                    out[i] *= 0.5f;
                }
            }

            @Override
            public void prefill(Sequence s, int layer, float[] q, int n, float[] out) {
                throw new UnsupportedOperationException("the stress runs decode only");
            }
        };
        LongContextResult r = new LongContextStress(config(DType.F32, 1, 100), halved, null).run();
        assertFalse(r.ok());
        assertEquals(15, r.attentionChecks());
        assertEquals(r.attentionChecks(), r.violationCount(), r.summary());
        assertTrue(r.violations().getFirst().contains("differs from the reference"), r.violations().getFirst());
    }

    /**
     * The f16 run hands the store f16 tensors generated as f16, for single tokens views of the generator's tables
     * in place (as {@code LongContextRun} does: the written rows for sinks and heavy hitters); the float path hands it
     * floats it converts. All store the same bytes, row for row (sinks and heavy hitters included), token by token
     * and in chunks.
     */
    @Test
    void theF16TensorPathStoresTheSameRowsAsTheFloatPath() {
        io.kvslab.KvLayout layout = SMALL.layout(DType.F16, 8);
        StructuredKv gen = new StructuredKv(layout, 11, StructuredKv.Shape.realistic());
        int width = layout.kvHeads() * layout.headDim();
        int viewed = 0;
        try (io.kvslab.KvStore a = io.kvslab.KvStore.open(layout); io.kvslab.KvStore b = io.kvslab.KvStore.open(layout);
             io.kvslab.KvStore c = io.kvslab.KvStore.open(layout);
             Sequence fromFloats = a.newSequence(); Sequence fromF16 = b.newSequence();
             Sequence fromViews = c.newSequence()) {
            for (int p = 0; p < 2100; ) {
                int n = p < 1100 ? 1 : 5;
                long[] pos = new long[n];
                for (int i = 0; i < n; i++) {
                    pos[i] = p + i;
                }
                for (int l = 0; l < layout.layers(); l++) {
                    float[] k = new float[n * width];
                    float[] v = new float[n * width];
                    gen.keys(0, l, pos, k);
                    gen.values(0, l, pos, v);
                    fromFloats.appendChunk(l, k, v, pos);
                    short[] kh = new short[n * width];
                    short[] vh = new short[n * width];
                    gen.keysF16(0, l, pos, kh);
                    gen.valuesF16(0, l, pos, vh);
                    fromF16.appendChunk(l, io.kvslab.KvTensor.of(java.lang.foreign.MemorySegment.ofArray(kh), DType.F16,
                            n, layout.kvHeads(), layout.headDim()), io.kvslab.KvTensor.of(
                            java.lang.foreign.MemorySegment.ofArray(vh), DType.F16, n, layout.kvHeads(),
                            layout.headDim()), pos);
                    io.kvslab.KvTensor kv = n == 1 ? gen.keysF16View(0, l, pos[0]) : null;
                    if (kv != null) {
                        fromViews.append(l, kv, gen.valuesF16View(0, l, pos[0]), pos[0]);
                        viewed++;
                    } else {
                        fromViews.appendChunk(l, io.kvslab.KvTensor.of(java.lang.foreign.MemorySegment.ofArray(kh),
                                DType.F16, n, layout.kvHeads(), layout.headDim()), io.kvslab.KvTensor.of(
                                java.lang.foreign.MemorySegment.ofArray(vh), DType.F16, n, layout.kvHeads(),
                                layout.headDim()), pos);
                    }
                }
                p += n;
            }
            assertTrue(viewed > 2000, viewed + " single-token appends from views");
            for (int l = 0; l < layout.layers(); l++) {
                for (int h = 0; h < layout.kvHeads(); h++) {
                    float[] x = new float[2100 * layout.headDim()];
                    float[] y = new float[x.length];
                    fromFloats.readKeys(l, h, x);
                    fromF16.readKeys(l, h, y);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(x, y, "keys of layer " + l + " head " + h);
                    fromViews.readKeys(l, h, y);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(x, y, "viewed keys, layer " + l + " head " + h);
                    fromFloats.readValues(l, h, x);
                    fromF16.readValues(l, h, y);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(x, y, "values of layer " + l + " head " + h);
                    fromViews.readValues(l, h, y);
                    org.junit.jupiter.api.Assertions.assertArrayEquals(x, y, "viewed values, layer " + l + " head " + h);
                }
            }
        }
    }

    @Test
    void churnsSinksAndRecentKeepsSinksAndTheNewestRows() {
        assertEquals("[0, 1, 7, 8, 9]", Arrays.toString(ChurnStress.sinksAndRecent(10, 2, 5)));
        assertEquals("[0, 1, 2]", Arrays.toString(ChurnStress.sinksAndRecent(3, 2, 5)));
        assertEquals("[0, 1, 2, 3, 4]", Arrays.toString(ChurnStress.sinksAndRecent(5, 2, 5)));
        assertEquals("[3, 4, 5]", Arrays.toString(ChurnStress.sinksAndRecent(6, 0, 3)));
    }

    @Test
    void storedValueRoundingMatchesIeeeHalfAndBfloat() {
        assertEquals(1.0f, StoredValues.rounded(1.0f + 0x1p-12f, DType.F16));       // below half an f16 ulp
        assertEquals(1.0f + 0x1p-10f, StoredValues.rounded(1.0f + 0x1p-10f, DType.F16));
        assertEquals(1.0f, StoredValues.rounded(1.0f + 0x1p-8f, DType.BF16));        // tie -> even (1.0)
        assertEquals(1.0f + 0x1p-6f, StoredValues.rounded(1.0f + 0x1.8p-7f, DType.BF16));   // tie -> even (odd up)
        assertEquals(1.0f + 0x1p-7f, StoredValues.rounded(1.0f + 0x1.1p-7f, DType.BF16));
        assertEquals(0.1f, StoredValues.rounded(0.1f, DType.F32));
    }
}
