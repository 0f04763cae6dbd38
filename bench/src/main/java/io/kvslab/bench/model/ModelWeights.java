package io.kvslab.bench.model;

/**
 * The float32 tensors of a Llama model, held on the heap in llama2.c's layout: every matrix is row-major
 * {@code [out][in]} so that {@code y = W x} reads row {@code i} of W for output {@code i}.
 *
 * <p>Fields are package-private: the forward pass reads them directly. Outside the package the accessors return copies,
 * so nobody can change a model another run is using.
 */
public final class ModelWeights {
    final float[] tokenEmbedding; // [vocab][dim]
    final float[][] rmsAtt;       // [layer][dim]
    final float[][] wq;           // [layer][dim][dim]
    final float[][] wk;           // [layer][kvDim][dim]
    final float[][] wv;           // [layer][kvDim][dim]
    final float[][] wo;           // [layer][dim][dim]
    final float[][] rmsFfn;       // [layer][dim]
    final float[][] w1;           // [layer][hidden][dim]  (gate)
    final float[][] w2;           // [layer][dim][hidden]  (down)
    final float[][] w3;           // [layer][hidden][dim]  (up)
    final float[] rmsFinal;       // [dim]
    final float[] classifier;     // [vocab][dim]; the same array as tokenEmbedding when the model shares it

    ModelWeights(ModelConfig c, float[] tokenEmbedding, float[][] rmsAtt, float[][] wq, float[][] wk, float[][] wv,
                 float[][] wo, float[][] rmsFfn, float[][] w1, float[][] w2, float[][] w3, float[] rmsFinal,
                 float[] classifier) {
        int dim = c.dim();
        int kvDim = c.kvDim();
        int hidden = c.hiddenDim();
        check("token embedding", tokenEmbedding, (long) c.vocabSize() * dim);
        check("rms_final", rmsFinal, dim);
        check("classifier", classifier, (long) c.vocabSize() * dim);
        checkLayers("rms_att", rmsAtt, c.layers(), dim);
        checkLayers("wq", wq, c.layers(), (long) dim * dim);
        checkLayers("wk", wk, c.layers(), (long) kvDim * dim);
        checkLayers("wv", wv, c.layers(), (long) kvDim * dim);
        checkLayers("wo", wo, c.layers(), (long) dim * dim);
        checkLayers("rms_ffn", rmsFfn, c.layers(), dim);
        checkLayers("w1", w1, c.layers(), (long) hidden * dim);
        checkLayers("w2", w2, c.layers(), (long) dim * hidden);
        checkLayers("w3", w3, c.layers(), (long) hidden * dim);
        this.tokenEmbedding = tokenEmbedding;
        this.rmsAtt = rmsAtt;
        this.wq = wq;
        this.wk = wk;
        this.wv = wv;
        this.wo = wo;
        this.rmsFfn = rmsFfn;
        this.w1 = w1;
        this.w2 = w2;
        this.w3 = w3;
        this.rmsFinal = rmsFinal;
        this.classifier = classifier;
    }

    private static void check(String name, float[] a, long expected) {
        if (a == null || a.length != expected) {
            throw new IllegalArgumentException(name + " must hold " + expected + " floats, got "
                    + (a == null ? "none" : a.length));
        }
    }

    private static void checkLayers(String name, float[][] a, int layers, long perLayer) {
        if (a == null || a.length != layers) {
            throw new IllegalArgumentException(name + " must have " + layers + " layers, got " + (a == null ? "none" : a.length));
        }
        for (int l = 0; l < layers; l++) {
            check(name + " of layer " + l, a[l], perLayer);
        }
    }

    /**
     * First 16 hex digits of SHA-256 over every tensor the forward pass reads, in a fixed order (as float32 bits,
     * little-endian): names the weights wherever K and V depend on them (the shared prefix tier's model id).
     */
    public String digest() {
        try {
            java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 << 16).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            java.util.List<float[]> all = new java.util.ArrayList<>();
            all.add(tokenEmbedding);
            for (float[][] t : new float[][][] {rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3}) {
                all.addAll(java.util.Arrays.asList(t));
            }
            all.add(rmsFinal);
            all.add(classifier);
            for (float[] a : all) {
                for (int i = 0; i < a.length; ) {
                    b.clear();
                    int n = Math.min(a.length - i, b.capacity() / 4);
                    b.asFloatBuffer().put(a, i, n);
                    sha.update(b.array(), 0, n * 4);
                    i += n;
                }
            }
            return java.util.HexFormat.of().formatHex(sha.digest()).substring(0, 16);
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    /** A copy of layer {@code layer}'s attention output projection W_o, row-major {@code [dim][dim]} ([out][in]). */
    public float[] wo(int layer) {
        return wo[layer].clone();
    }

    /** A copy of layer {@code layer}'s query projection W_q, row-major {@code [dim][dim]}. */
    public float[] wq(int layer) {
        return wq[layer].clone();
    }

    /** A copy of layer {@code layer}'s key projection W_k, row-major {@code [kvDim][dim]}. */
    public float[] wk(int layer) {
        return wk[layer].clone();
    }

    /** A copy of layer {@code layer}'s value projection W_v, row-major {@code [kvDim][dim]}. */
    public float[] wv(int layer) {
        return wv[layer].clone();
    }

    /** A copy of the token embedding table, row-major {@code [vocab][dim]}. */
    public float[] tokenEmbedding() {
        return tokenEmbedding.clone();
    }

    /** A copy of the classifier (output projection), row-major {@code [vocab][dim]}. */
    public float[] classifier() {
        return classifier.clone();
    }

    /** True when the classifier is the token embedding table itself (llama2.c's shared-weights flag). */
    public boolean sharedClassifier() {
        return classifier == tokenEmbedding;
    }

    /** Whether every weight equals the other model's bit for bit. */
    public boolean bitwiseEquals(ModelWeights o) {
        return java.util.Arrays.equals(tokenEmbedding, o.tokenEmbedding)
                && java.util.Arrays.deepEquals(new Object[]{rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3},
                new Object[]{o.rmsAtt, o.wq, o.wk, o.wv, o.wo, o.rmsFfn, o.w1, o.w2, o.w3})
                && java.util.Arrays.equals(rmsFinal, o.rmsFinal)
                && java.util.Arrays.equals(classifier, o.classifier);
    }
}
