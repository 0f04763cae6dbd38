package io.kvslab.bench.eval.pod;

import io.kvslab.bench.model.KvCache;
import io.kvslab.bench.model.SequenceAttendPath;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.Sequence;
import io.kvslab.pod.PodDecoder;
import io.kvslab.pod.PodSharing;
import io.kvslab.pod.PodVariant;

/**
 * A runner {@link KvCache} on a store {@link Sequence} with PoD key sharing: a thin adapter from the runner's
 * arrays to the library's {@link PodDecoder}, which does the PoD decode step (append, demote, v1/v2 attention with
 * the LSE merge). Until {@link #startSharing} it is an ordinary store cache (dense attention; the evaluation prefills
 * the context this way, as for every policy). A prefill chunk under sharing demotes for the chunk's first query
 * ({@link PodDecoder#demoteForChunk}) and runs causal attention over the aliased table (v2 semantics); v1 is
 * decode-only. Closing closes the sequence, the decoder and the attention (like {@code StoreKvCache}); the caller
 * closes the store.
 */
public final class PodKvCache implements KvCache {
    private final Sequence sequence;
    private final SequenceAttention attention;
    private final PodDecoder decoder;
    private final SequenceAttendPath path;

    /**
     * @param attention dense attention (the kernel, or plain Java as a reference) for prefill chunks and for the
     *                  dense and v2 decode steps, closed with this cache
     */
    public PodKvCache(Sequence sequence, SequenceAttention attention, PodSharing sharing) {
        if (sequence == null || attention == null || sharing == null) {
            throw new IllegalArgumentException("a PoD cache needs a sequence, an attention and a PodSharing");
        }
        this.sequence = sequence;
        this.attention = attention;
        this.decoder = PodDecoder.create(sequence, sharing, 1, attention::decode);
        this.path = new SequenceAttendPath(sequence, attention, decoder::decode, decoder::demoteForChunk);
    }

    public Sequence sequence() {
        return sequence;
    }

    public PodSharing sharing() {
        return decoder.sharing();
    }

    /** {@link PodDecoder#startSharing}. */
    public int startSharing(long nextPosition) {
        return decoder.startSharing(nextPosition);
    }

    public boolean sharingStarted() {
        return decoder.sharingStarted();
    }

    /** K blocks demoted (own copies released) so far. */
    public long freedBlocks() {
        return decoder.freedBlocks();
    }

    @Override
    public void attend(int layer, float[] q, float[] k, float[] v, long[] positions, int n, float[] out) {
        if (n > 1 && decoder.sharingStarted() && sharing().config().variant() == PodVariant.V1_SHARED_SCORES) {
            throw new IllegalStateException("PoD v1 runs token by token; feed the tokens after startSharing one at "
                    + "a time");
        }
        path.attend(layer, q, k, v, positions, n, out);
    }

    @Override
    public void close() {
        try {
            sequence.close();
        } finally {
            try {
                decoder.close();
            } finally {
                attention.close();
            }
        }
    }
}
