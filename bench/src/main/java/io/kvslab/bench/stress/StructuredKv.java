package io.kvslab.bench.stress;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvTensor;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/**
 * Deterministic synthetic keys, values and queries with the structure real decoder attention has, cheap enough to
 * stream a million tokens through a Llama-3-8B geometry.
 *
 * <p>Every row is a pure function of {@code (seed, salt, layer, kvHead, position)}, so a checker can regenerate
 * any stored row from its position alone (the {@code salt} tells apart sequences that append different tokens at
 * the same positions, e.g. forks).
 *
 * <p>Structure, as logits {@code q.k / sqrt(headDim)} of a query against the keys it attends to:
 * <ul>
 *   <li><b>sinks</b>: the first {@code sinks} positions carry a large component along a per-(layer, KV head)
 *       direction {@code u} that every query also contains, giving them a logit of about {@code sinkLogit};</li>
 *   <li><b>heavy hitters</b>: about one position in {@code heavyEvery} (a hash of layer, head, position) carries
 *       the same component, logit about {@code heavyLogit};</li>
 *   <li><b>local windows</b>: the key at position p is row p of a table whose columns are independent low-pass
 *       noise along the position axis, and a query at position t contains row t, so {@code q.k} falls off
 *       smoothly with the distance t - p over roughly {@code localWidth} positions (peak logit about
 *       {@code localLogit}); the table repeats every {@value #PERIOD} positions.</li>
 * </ul>
 * Values are white Gaussian noise. Building a row is one array copy plus, for the rare sink or heavy hitter,
 * one scaled add; no per-element random numbers are drawn on the hot path. {@link #keysF16} and
 * {@link #valuesF16} write the same rows already rounded to f16 ({@code Float.floatToFloat16} of every element
 * of {@link #keys} / {@link #values}), copied from f16 copies of the tables: a writer that stores f16 hands the
 * store its rows without a conversion per element.
 *
 * <p><b>Layout of one token's rows.</b> The (layer, KV head) streams read the key table at fixed lags of
 * {@link #lag()} rows from each other: stream {@code s = layer * kvHeads + kvHead} at position p reads table row
 * {@code base + p + s * lag} (mod the period), and one token's value rows are consecutive slices of the noise table
 * (stream s at {@code start(p) + s * headDim}, mod the table). So one token's {@code [kvHeads, headDim]} rows of a
 * layer lie in the f16 tables at fixed strides, and {@link #keysF16View} / {@link #valuesF16View} hand them to the
 * store in place, without a copy into a staging buffer. The lag is at least the low-pass filter's support, so the
 * streams' keys at one position are uncorrelated, as with independent tables. (Before, each stream started at an
 * independent hash: the streams also read one table at lags, random ones, so a token's 256 key rows (Llama-3-8B) were
 * spread over the whole 16 MiB f16 table; chained, they lie in a window of {@code streams x lag} rows, 4 MiB, that
 * slides by one row per token, and a row stream s + 1 read is read by stream s {@code lag} tokens later.)
 */
public final class StructuredKv {
    /** Structure parameters (logits are in units of the softmax temperature, i.e. after the 1/sqrt(d) scale). */
    public record Shape(int sinks, double sinkLogit, int heavyEvery, double heavyLogit, double localLogit,
                        int localWidth) {
        public Shape {
            if (sinks < 0 || heavyEvery < 1 || localWidth < 1 || localWidth > 4096) {
                throw new IllegalArgumentException("shape needs sinks >= 0, heavyEvery >= 1 and localWidth in "
                        + "[1, 4096]; got " + sinks + ", " + heavyEvery + ", " + localWidth);
            }
        }

        /** 4 sinks (logit 8), one heavy hitter per 1024 positions (logit 5), local windows of ~32 positions. */
        public static Shape realistic() {
            return new Shape(4, 8.0, 1024, 5.0, 4.0, 32);
        }
    }

    /** White-noise table length (a power of two); value rows start at hashed offsets in it. */
    static final int TABLE = 1 << 20;
    private static final int MASK = TABLE - 1;
    /** Positions before the smooth key table repeats (a power of two). */
    static final int PERIOD = 1 << 16;
    private static final int PERIOD_MASK = PERIOD - 1;
    private static final float QUERY_SINK_COMPONENT = 1f;

    private final int layers;
    private final int queryHeads;
    private final int kvHeads;
    private final int dim;
    private final int group;
    private final long seed;
    private final Shape shape;
    /** Key rows: PERIOD rows of dim floats, each column low-pass noise along the position axis, unit variance. */
    private final float[] smooth;
    /** White N(0,1) noise, same length. */
    private final float[] white;
    /** Unit vector u per (layer, KV head), flattened [layer][kvHead][dim]. */
    private final float[] direction;
    /**
     * {@link #smooth} and {@link #white} as f16 bits, built on the first f16 write ({@link #keysF16}); the key table
     * is followed by its first {@code (kvHeads - 1) * lag} rows again, and the noise table by its first
     * {@code kvHeads * headDim} values, so that a token's rows of every head of a layer lie at one stride from where
     * its head 0 row starts, without a wrap.
     */
    private volatile short[][] f16Tables;
    /** {@link #f16Tables} as read-only heap segments, for {@link #keysF16View} / {@link #valuesF16View}. */
    private volatile MemorySegment[] f16Segments;
    /** Key table rows between streams s and s + 1 (s = layer * kvHeads + kvHead) at one position. */
    private final int lag;
    private final float sinkScale;
    private final float heavyScale;
    private final float localScale;

    public StructuredKv(KvLayout layout, long seed, Shape shape) {
        this.layers = layout.layers();
        this.queryHeads = layout.queryHeads();
        this.kvHeads = layout.kvHeads();
        this.dim = layout.headDim();
        this.group = layout.groupSize();
        this.seed = seed;
        this.shape = shape;
        SplittableRandom rnd = new SplittableRandom(seed);
        // One token's kvHeads value rows start anywhere in [0, TABLE): the table continues with its first rows.
        this.white = new float[TABLE + kvHeads * dim];
        for (int i = 0; i < TABLE; i++) {
            white[i] = (float) rnd.nextGaussian();
        }
        for (int i = TABLE; i < white.length; i++) {
            white[i] = white[i - TABLE];
        }
        int radius = Math.max(1, shape.localWidth() / 4);
        this.smooth = lowPass(rnd, radius, dim);
        this.lag = lag(radius, layers * kvHeads);
        this.direction = new float[layers * kvHeads * dim];
        for (int d = 0; d < layers * kvHeads; d++) {
            double norm = 0;
            for (int i = 0; i < dim; i++) {
                float x = (float) rnd.nextGaussian();
                direction[d * dim + i] = x;
                norm += (double) x * x;
            }
            float inv = (float) (1 / Math.sqrt(norm));
            for (int i = 0; i < dim; i++) {
                direction[d * dim + i] *= inv;
            }
        }
        double sqrtDim = Math.sqrt(dim);
        // q carries QUERY_SINK_COMPONENT * u; a sink key carries sinkScale * u: logit = product / sqrt(dim).
        this.sinkScale = (float) (shape.sinkLogit() * sqrtDim / QUERY_SINK_COMPONENT);
        this.heavyScale = (float) (shape.heavyLogit() * sqrtDim / QUERY_SINK_COMPONENT);
        // Key rows have unit-variance elements; q's copy of row t is scaled so that p = t gives localLogit.
        this.localScale = (float) (shape.localLogit() / sqrtDim);
    }

    /**
     * {@code PERIOD x dim} table whose every column is white noise box-filtered three times along the position axis
     * (close to a Gaussian kernel), circular, rescaled to unit variance. Columns are independent, so rows at
     * distant positions are nearly orthogonal while nearby rows are strongly correlated.
     *
     * <p>Columns are drawn one after the other (the order of {@code rnd}'s draws defines the table), but written
     * {@value #COLUMN_BATCH} at a time: the table is row-major, so writing one column alone touches a new cache line
     * on every one of its {@code PERIOD} stores (the build's main cost for a 32 MB table).
     */
    static float[] lowPass(SplittableRandom rnd, int radius, int dim) {
        float[] out = new float[PERIOD * dim];
        float[] cols = new float[COLUMN_BATCH * PERIOD];   // column-major staging of up to COLUMN_BATCH columns
        double[] a = new double[PERIOD];
        double[] b = new double[PERIOD];
        for (int first = 0; first < dim; first += COLUMN_BATCH) {
            int batch = Math.min(COLUMN_BATCH, dim - first);
            for (int c = 0; c < batch; c++) {
                smoothColumn(rnd, radius, a, b, cols, c * PERIOD);
            }
            for (int p = 0; p < PERIOD; p++) {
                int row = p * dim + first;
                for (int c = 0; c < batch; c++) {
                    out[row + c] = cols[c * PERIOD + p];
                }
            }
        }
        return out;
    }

    /**
     * The lag between consecutive (layer, KV head) streams' rows of the key table: the smallest power of two above
     * the support of {@link #lowPass}'s filter (three boxes of {@code 2 radius + 1} taps: {@code 6 radius + 1}), so two
     * streams' keys at one position share no filtered noise sample (their correlation is 0), but at most
     * {@code PERIOD / streams}, so every stream's lag stays distinct within one period (for Llama-3-8B: 64 rows,
     * 256 streams, 16,384 of the 65,536 rows).
     */
    static int lag(int radius, int streams) {
        int lag = Integer.highestOneBit(6 * radius) << 1;   // > 6 radius, i.e. >= 6 radius + 1
        return Math.max(1, Math.min(lag, PERIOD / streams));
    }

    /** Key table rows between streams s and s + 1 (s = layer * kvHeads + kvHead) at one position. */
    int lag() {
        return lag;
    }

    /** Columns staged per batch of {@link #lowPass}: 16 floats, one 64-byte cache line of a table row. */
    static final int COLUMN_BATCH = 16;

    /** One column of {@link #lowPass} into {@code dst[off .. off + PERIOD)}; {@code a}, {@code b} are scratch. */
    private static void smoothColumn(SplittableRandom rnd, int radius, double[] a, double[] b, float[] dst,
                                     int off) {
        for (int p = 0; p < PERIOD; p++) {
            a[p] = rnd.nextGaussian();
        }
        for (int pass = 0; pass < 3; pass++) {
            double sum = 0;
            for (int i = -radius; i <= radius; i++) {
                sum += a[i & PERIOD_MASK];
            }
            for (int p = 0; p < PERIOD; p++) {
                b[p] = sum;
                sum += a[(p + radius + 1) & PERIOD_MASK] - a[(p - radius) & PERIOD_MASK];
            }
            double[] t = a;
            a = b;
            b = t;
        }
        double mean = 0;
        for (double x : a) {
            mean += x;
        }
        mean /= PERIOD;
        double var = 0;
        for (double x : a) {
            var += (x - mean) * (x - mean);
        }
        double inv = 1 / Math.sqrt(var / PERIOD);
        for (int p = 0; p < PERIOD; p++) {
            dst[off + p] = (float) ((a[p] - mean) * inv);
        }
    }

    public Shape shape() {
        return shape;
    }

    /** Whether the key at this position carries the attention-sink or heavy-hitter component. */
    public boolean isSink(long position) {
        return position < shape.sinks();
    }

    /** Whether the key of (layer, kvHead) at this position is a heavy hitter (never true for a sink). */
    public boolean isHeavyHitter(int layer, int kvHead, long position) {
        if (position < shape.sinks()) {
            return false;
        }
        return Long.remainderUnsigned(mix(seed ^ 0x5EEDL, layer, kvHead, position), shape.heavyEvery()) == 0;
    }

    /**
     * Keys of {@code positions.length} tokens for every KV head of a layer, laid out [token][kvHead][dim] (the
     * layout {@code Sequence.appendChunk} takes).
     */
    public void keys(long salt, int layer, long[] positions, float[] k) {
        int width = kvHeads * dim;
        for (int t = 0; t < positions.length; t++) {
            for (int h = 0; h < kvHeads; h++) {
                keyRow(salt, layer, h, positions[t], k, t * width + h * dim);
            }
        }
    }

    /** Values, same layout as {@link #keys}. */
    public void values(long salt, int layer, long[] positions, float[] v) {
        int width = kvHeads * dim;
        for (int t = 0; t < positions.length; t++) {
            for (int h = 0; h < kvHeads; h++) {
                valueRow(salt, layer, h, positions[t], v, t * width + h * dim);
            }
        }
    }

    /**
     * {@link #keys} rounded to f16 (IEEE round-to-nearest-even, {@code Float.floatToFloat16}), as f16 bits in the
     * same layout: element for element {@code floatToFloat16} of what {@code keys} writes.
     */
    public void keysF16(long salt, int layer, long[] positions, short[] k) {
        int width = kvHeads * dim;
        for (int t = 0; t < positions.length; t++) {
            for (int h = 0; h < kvHeads; h++) {
                keyRowF16(salt, layer, h, positions[t], k, t * width + h * dim);
            }
        }
    }

    /** {@link #values} rounded to f16, as {@link #keysF16}. */
    public void valuesF16(long salt, int layer, long[] positions, short[] v) {
        short[] table = f16Tables()[1];
        int width = kvHeads * dim;
        for (int t = 0; t < positions.length; t++) {
            System.arraycopy(table, valueStart(salt, layer, positions[t]), v, t * width, width);
        }
    }

    /**
     * One token's keys for every KV head of {@code layer}, as an f16 {@code [1, kvHeads, headDim]} view of the
     * generator's own f16 table (no copy: the rows {@link #keysF16} would write, in place), or null when the token is
     * a sink or a heavy hitter of some head (those rows are the table's plus a scaled direction and exist nowhere in
     * memory: write them with {@link #keysF16}). The view's segment is read-only (it is the generator's table).
     */
    public KvTensor keysF16View(long salt, int layer, long position) {
        if (isSink(position)) {
            return null;
        }
        for (int h = 0; h < kvHeads; h++) {
            if (isHeavyHitter(layer, h, position)) {
                return null;
            }
        }
        long row = (keyBase(salt, layer, 0) + position) & PERIOD_MASK;
        MemorySegment table = f16Segments()[0].asSlice(row * dim * Short.BYTES);
        return new KvTensor(table, DType.F16, 1, kvHeads, dim, (long) kvHeads * dim, (long) lag * dim, 1);
    }

    /**
     * One token's values for every KV head of {@code layer}, as an f16 {@code [1, kvHeads, headDim]} view of the
     * generator's f16 noise table: the rows {@link #valuesF16} would write, in place (no copy).
     */
    public KvTensor valuesF16View(long salt, int layer, long position) {
        MemorySegment table = f16Segments()[1].asSlice((long) valueStart(salt, layer, position) * Short.BYTES);
        return new KvTensor(table, DType.F16, 1, kvHeads, dim, (long) kvHeads * dim, dim, 1);
    }

    /** {@link #keyRow} rounded to f16 bits: a copy of the f16 table, or for a sink or heavy hitter the float row rounded. */
    private void keyRowF16(long salt, int layer, int kvHead, long position, short[] dst, int off) {
        if (isSink(position) || isHeavyHitter(layer, kvHead, position)) {
            float[] row = new float[dim];   // one row in about a thousand: not worth a scratch buffer
            keyRow(salt, layer, kvHead, position, row, 0);
            for (int i = 0; i < dim; i++) {
                dst[off + i] = Float.floatToFloat16(row[i]);
            }
            return;
        }
        int start = (int) ((keyBase(salt, layer, kvHead) + position) & PERIOD_MASK) * dim;
        System.arraycopy(f16Tables()[0], start, dst, off, dim);
    }

    /**
     * {smooth followed by its first (kvHeads - 1) * lag rows, white} rounded to f16, built once (racing builders
     * compute the same arrays).
     */
    private short[][] f16Tables() {
        short[][] t = f16Tables;
        if (t == null) {
            short[] keys = new short[(PERIOD + (kvHeads - 1) * lag) * dim];
            for (int i = 0; i < smooth.length; i++) {
                keys[i] = Float.floatToFloat16(smooth[i]);
            }
            System.arraycopy(keys, 0, keys, smooth.length, keys.length - smooth.length);
            t = new short[][] {keys, toF16(white)};
            f16Tables = t;
        }
        return t;
    }

    private MemorySegment[] f16Segments() {
        MemorySegment[] s = f16Segments;
        if (s == null) {
            short[][] t = f16Tables();
            s = new MemorySegment[] {MemorySegment.ofArray(t[0]).asReadOnly(),
                    MemorySegment.ofArray(t[1]).asReadOnly()};
            f16Segments = s;
        }
        return s;
    }

    private static short[] toF16(float[] a) {
        short[] h = new short[a.length];
        for (int i = 0; i < a.length; i++) {
            h[i] = Float.floatToFloat16(a[i]);
        }
        return h;
    }

    /** One key row into {@code dst[off .. off + headDim)}. */
    public void keyRow(long salt, int layer, int kvHead, long position, float[] dst, int off) {
        int start = (int) ((keyBase(salt, layer, kvHead) + position) & PERIOD_MASK) * dim;
        System.arraycopy(smooth, start, dst, off, dim);
        float boost = isSink(position) ? sinkScale : isHeavyHitter(layer, kvHead, position) ? heavyScale : 0f;
        if (boost != 0f) {
            int u = (layer * kvHeads + kvHead) * dim;
            for (int i = 0; i < dim; i++) {
                dst[off + i] += boost * direction[u + i];
            }
        }
    }

    /** One value row into {@code dst[off .. off + headDim)}. */
    public void valueRow(long salt, int layer, int kvHead, long position, float[] dst, int off) {
        System.arraycopy(white, valueStart(salt, layer, position) + kvHead * dim, dst, off, dim);
    }

    /**
     * Where one token's value rows of a layer start in the noise table (head h's row is {@code h * dim} further): the
     * token's rows of all layers are one slice from a hashed start, layer after layer, wrapped per layer.
     */
    private int valueStart(long salt, int layer, long position) {
        return (int) ((mix(seed ^ salt ^ 0x7A1DEL, -1L, -1L, position) + (long) layer * kvHeads * dim) & MASK);
    }

    /**
     * The query of the token at {@code position} for every query head of a layer, {@code float[queryHeads * dim]}.
     * Query head j of a GQA group reads its slice a little further back (2j positions), so heads of one group peak
     * at slightly different distances, and weighs the sink direction a little differently.
     *
     * <p>The slice of the key table is taken orthogonal to the sink direction u: its chance overlap with u
     * ({@code row . u}, about N(0, 1)) would otherwise add {@code sinkScale x localScale x (row . u) / sqrt(dim)}
     * to the logit of every sink and heavy hitter of the head, a shift with a standard deviation of 2.8 logits for
     * the realistic shape, so one query's sinks could sit anywhere from logit 3 to 13 instead of about 8.
     */
    public void query(long salt, int layer, long position, float[] q) {
        for (int qh = 0; qh < queryHeads; qh++) {
            int h = qh / group;
            int j = qh % group;
            int start = (int) ((keyBase(salt, layer, h) + position - 2L * j) & PERIOD_MASK) * dim;
            int u = (layer * kvHeads + h) * dim;
            float sink = QUERY_SINK_COMPONENT * (1f + 0.25f * j);
            int noise = (int) (mix(seed ^ salt ^ 0x9E7L, layer, qh, position) & MASK);
            double overlap = 0;
            for (int i = 0; i < dim; i++) {
                overlap += (double) smooth[start + i] * direction[u + i];
            }
            float along = (float) overlap;
            for (int i = 0; i < dim; i++) {
                q[qh * dim + i] = localScale * (smooth[start + i] - along * direction[u + i])
                        + sink * direction[u + i] + 0.1f * white[noise + i];
            }
        }
    }

    /** Key table row of (layer, kvHead) at position 0, before the wrap to the period. */
    private long keyBase(long salt, int layer, int kvHead) {
        return mix(seed ^ salt, -1L, -1L, -1L) + ((long) layer * kvHeads + kvHead) * lag;
    }

    /** splitmix64-style mixing of four values into 64 well-spread bits. */
    static long mix(long a, long b, long c, long d) {
        long z = a * 0x9E3779B97F4A7C15L + b;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L + c;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL + d;
        z = (z ^ (z >>> 31)) * 0x9E3779B97F4A7C15L;
        return z ^ (z >>> 29);
    }
}
