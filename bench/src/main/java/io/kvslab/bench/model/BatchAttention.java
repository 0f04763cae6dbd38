package io.kvslab.bench.model;

/**
 * The attention of one decode step for a whole batch at one layer: row {@code t} appends its token's keys and
 * values to its own sequence and attends over it. {@link ForwardPass#runRows} calls it once per layer, so an
 * implementation can run every row's attention as one kernel call ({@link StoreBatchAttention}) or row by row
 * ({@link #perRow}).
 *
 * <p>Layouts as in {@link KvCache}: {@code q} and {@code out} are {@code [n][heads][headDim]}, {@code k} and
 * {@code v} {@code [n][kvHeads][headDim]} (arrays may be longer). A row whose {@code failures[t]} is set on entry
 * is skipped; a row that fails now (out of KV memory) gets its exception there. A skipped or failed row's output
 * is zeros; the other rows are computed as if it were not there.
 */
public interface BatchAttention {
    void attend(int layer, float[] q, float[] k, float[] v, long[] positions, int n, float[] out,
                RuntimeException[] failures);

    /** Row by row through each row's own {@link KvCache} (the path of caches without a batched kernel). */
    static BatchAttention perRow(KvCache[] caches, int dim, int kvDim) {
        float[] q1 = new float[dim];
        float[] k1 = new float[kvDim];
        float[] v1 = new float[kvDim];
        float[] out1 = new float[dim];
        long[] pos1 = new long[1];
        return (layer, q, k, v, positions, n, out, failures) -> {
            for (int t = 0; t < n; t++) {
                if (failures[t] != null) {
                    java.util.Arrays.fill(out, t * dim, (t + 1) * dim, 0.0f);
                    continue;
                }
                System.arraycopy(q, t * dim, q1, 0, dim);
                System.arraycopy(k, t * kvDim, k1, 0, kvDim);
                System.arraycopy(v, t * kvDim, v1, 0, kvDim);
                pos1[0] = positions[t];
                try {
                    caches[t].attend(layer, q1, k1, v1, pos1, 1, out1);
                    System.arraycopy(out1, 0, out, t * dim, dim);
                } catch (RuntimeException e) {
                    failures[t] = e;
                    java.util.Arrays.fill(out, t * dim, (t + 1) * dim, 0.0f);
                }
            }
        };
    }
}
