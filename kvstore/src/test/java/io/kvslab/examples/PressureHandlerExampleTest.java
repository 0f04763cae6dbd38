package io.kvslab.examples;

import io.kvslab.ClosedException;
import io.kvslab.ConcurrentUseException;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.MemoryLimitExceededException;
import io.kvslab.Sequence;
import io.kvslab.StoreConfig;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.LayerContext;
import io.kvslab.policy.LayerInputs;
import io.kvslab.policy.Policies;
import io.kvslab.policy.Selection;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * docs/sequence-ops.md's "a compression policy as a handler", run: a store at its limit compresses an idle sequence
 * with a policy so that another one can keep growing. The page includes the region between the markers verbatim
 * ({@link DocExamplesTest}).
 */
class PressureHandlerExampleTest {
    private static final int PROMPT = 512;

    @Test
    void anIdleSequenceIsCompressedWhenAnotherNeedsItsMemory() {
        KvLayout layout = KvLayout.of(2, 4, 2, 64, DType.F16);
        Random rnd = new Random(3);
        long limit = 1L << 20;   // 1 MiB: the idle sequence alone takes half of it
        try (KvStore store = KvStore.open(layout, new StoreConfig(limit, 64L << 10, 0));
             Sequence idle = store.newSequence();
             Sequence active = store.newSequence()) {
            long[] positions = LongStream.range(0, PROMPT).toArray();
            for (int l = 0; l < layout.layers(); l++) {
                idle.appendChunk(l, gaussian(rnd, PROMPT * 2 * 64), gaussian(rnd, PROMPT * 2 * 64), positions);
            }
            Scheduler scheduler = new Scheduler(idle);
            // [doc:pressure-handler]
            CompressionPolicy policy = Policies.knorm();   // needs no window queries or W_o: a handler has none
            Budget budget = Budget.tokens(128);            // rows per (layer, KV head) a victim keeps
            store.addPressureHandler(p -> {
                Sequence victim = scheduler.longestIdleSequenceExcept(p.requester());
                if (victim == null) {
                    return false;
                }
                Selection selection;
                try (Compressor compressor = new Compressor()) {   // handlers may run on several threads at once
                    List<LayerContext> layers = new ArrayList<>();
                    for (int l = 0; l < layout.layers(); l++) {
                        layers.add(LayerContext.read(victim, l, LayerInputs.none(), policy.readsRows()));
                    }
                    selection = policy.select(layers, budget, compressor);
                } catch (ConcurrentUseException | ClosedException skipped) {
                    return false;   // the victim is busy on another thread, or closed: skip it
                }
                boolean freed = false;
                for (int l = 0; l < layout.layers(); l++) {
                    for (int h = 0; h < layout.kvHeads(); h++) {   // frees rows for real, or skips a busy victim
                        if (!selection.keepsAll(l, h)) {
                            freed |= p.tryKeep(victim, l, h, selection.kept(l, h));
                        }
                    }
                }
                return freed;
            });
            // [/doc:pressure-handler]
            MemoryLimitExceededException full = assertThrows(MemoryLimitExceededException.class, () -> {
                for (long t = 0; ; t++) {
                    for (int l = 0; l < layout.layers(); l++) {
                        active.append(l, gaussian(rnd, 2 * 64), gaussian(rnd, 2 * 64), t);
                    }
                }
            });
            assertTrue(full.getMessage() != null);
            assertEquals(PROMPT / 4, idle.length(0, 0), "the idle sequence was compressed to its budget, once");
            // without the handler the active sequence would have stopped at the half the idle one left free
            assertTrue(active.length(0, 0) > PROMPT, "grew to " + active.length(0, 0) + " rows");
            assertTrue(store.metrics().pressureRelieved() >= 1);
        }
    }

    /** Stands in for a serving scheduler that knows which sequences wait. */
    private record Scheduler(Sequence idle) {
        Sequence longestIdleSequenceExcept(Sequence requester) {
            return idle == requester || idle.isClosed() ? null : idle;
        }
    }

    private static float[] gaussian(Random rnd, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }
}
