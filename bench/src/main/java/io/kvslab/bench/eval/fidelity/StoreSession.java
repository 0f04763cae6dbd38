package io.kvslab.bench.eval.fidelity;

import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.Session;
import io.kvslab.bench.model.StoreKvCache;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;

/**
 * A session whose KV rows live in a fresh KVSlab store of its own (rows of the given element type, the eval's block
 * size), so the store's live bytes are exactly this run's KV memory. Closing closes the session, then the store.
 */
final class StoreSession implements AutoCloseable {
    private final KvStore store;
    private final Session session;
    private final Sequence sequence;

    StoreSession(LlamaModel model, int tokensPerBlock, SequenceAttention attention, KvDtypes dtype) {
        ModelConfig c = model.config();
        this.store = KvStore.open(new KvLayout(c.layers(), c.heads(), c.kvHeads(), c.headDim(), dtype.key(),
                dtype.value(), tokensPerBlock));
        try {
            this.sequence = store.newSequence();
            this.session = new Session(model, new StoreKvCache(sequence, attention), MatMul.JAVA,
                    Session.DEFAULT_CHUNK);
        } catch (RuntimeException e) {
            store.close();
            throw e;
        }
    }

    Session session() {
        return session;
    }

    Sequence sequence() {
        return sequence;
    }

    KvStore store() {
        return store;
    }

    @Override
    public void close() {
        try {
            session.close();
        } finally {
            store.close();
        }
    }
}
