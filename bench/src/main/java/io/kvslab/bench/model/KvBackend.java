package io.kvslab.bench.model;

import io.kvslab.DType;

/** Where a session's keys and values live and what computes attention over them. */
public enum KvBackend {
    /** The KVSlab store with the library's native attention kernel: the real runner. */
    STORE("store") {
        @Override
        public KvCache open(ModelConfig c, DType keyDtype, DType valueDtype, int threads) {
            return StoreKvCache.open(c, keyDtype, valueDtype, KernelAttention.create(threads));
        }
    },
    /** The KVSlab store with plain-Java attention over the rows read back (checks the kernel). */
    STORE_JAVA("store-java") {
        @Override
        public KvCache open(ModelConfig c, DType keyDtype, DType valueDtype, int threads) {
            return StoreKvCache.open(c, keyDtype, valueDtype, new ReferenceAttention());
        }
    },
    /** Plain Java arrays and llama2.c's attention loops: the independent reference (float32 only). */
    JAVA("java") {
        @Override
        public KvCache open(ModelConfig c, DType keyDtype, DType valueDtype, int threads) {
            if (keyDtype != DType.F32 || valueDtype != DType.F32) {
                throw new IllegalArgumentException("the java KV backend stores float32 only, not K " + keyDtype
                        + " / V " + valueDtype);
            }
            return new JavaKvCache(c);
        }
    };

    private final String label;

    KvBackend(String label) {
        this.label = label;
    }

    /** The name the CLI uses. */
    public String label() {
        return label;
    }

    /**
     * A fresh cache for one session storing K rows as {@code keyDtype} and V rows as {@code valueDtype};
     * {@code threads} bounds the attention kernel's threads (store only).
     */
    public abstract KvCache open(ModelConfig c, DType keyDtype, DType valueDtype, int threads);

    /** A fresh cache for one session with K and V rows both {@code dtype}. */
    public KvCache open(ModelConfig c, DType dtype, int threads) {
        return open(c, dtype, dtype, threads);
    }

    /** A fresh cache for one session with a single-threaded kernel (best for small models). */
    public KvCache open(ModelConfig c, DType dtype) {
        return open(c, dtype, 1);
    }

    /** The backend with this CLI name. */
    public static KvBackend of(String label) {
        for (KvBackend b : values()) {
            if (b.label.equals(label)) {
                return b;
            }
        }
        throw new IllegalArgumentException("unknown KV backend '" + label + "'; expected store, store-java or java");
    }
}
