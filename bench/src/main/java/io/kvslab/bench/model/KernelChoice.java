package io.kvslab.bench.model;

/**
 * {@code generate}'s automatic choice of KV backend and matrix products ({@code --kv auto --matmul auto}): the KV
 * store with the native kernel and OpenBLAS for a real model; the same store with its plain-Java attention and
 * llama2.c's Java products for a model so small that loading and binding libkvslab and OpenBLAS costs more than the
 * native code can save. Both give llama2.c's tokens (the golden tests run both).
 *
 * @param kv the KV backend
 * @param matMul the matrix products
 */
public record KernelChoice(KvBackend kv, MatMul matMul) {
    /**
     * Weights one token multiplies by (all matrices, the classifier included) at or below which the Java path is
     * chosen. Loading libkvslab + OpenBLAS and binding their downcalls costs a fresh JVM ~0.1-0.2 s of CPU (measured
     * on stories260K, 0.26 M weights per token: the Java path takes 0.6-0.9x the native run's CPU over 512 positions,
     * docs/benchmarks.md, `gen2` section), while a token's Java products cost about 1 ms per million weights at C1
     * speed: below 1 M weights the native path does not win its start-up back within a few hundred tokens. The next
     * llama2.c model, stories15M, multiplies by 15 M weights per token (~15 ms per token in Java, a few in OpenBLAS),
     * where it does after a handful of tokens. Nothing between the two sizes was measured; 1 M sits in the gap.
     */
    public static final long JAVA_MAX_WEIGHTS_PER_TOKEN = 1_000_000L;

    /** The choice for a model of this shape. */
    public static KernelChoice auto(ModelConfig c) {
        return weightsPerToken(c) <= JAVA_MAX_WEIGHTS_PER_TOKEN
                ? new KernelChoice(KvBackend.STORE_JAVA, MatMul.JAVA)
                : new KernelChoice(KvBackend.STORE, MatMul.OPENBLAS);
    }

    /**
     * Multiply-adds of one token's matrix products: per layer the Q and O projections ({@code dim x dim} each), K and
     * V ({@code dim x kvDim} each) and the three feed-forward matrices ({@code dim x hiddenDim} each), then the
     * classifier ({@code vocab x dim}).
     */
    static long weightsPerToken(ModelConfig c) {
        long d = c.dim();
        long perLayer = 2 * d * d + 2 * d * c.kvDim() + 3 * d * c.hiddenDim();
        return c.layers() * perLayer + (long) c.vocabSize() * d;
    }
}
