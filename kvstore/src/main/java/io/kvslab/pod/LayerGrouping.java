package io.kvslab.pod;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * PoD's offline head-wise layer grouping: for every KV head, a partition of the layers into consecutive groups;
 * every layer of a group uses the keys of the group's lowest layer (its <em>base</em>) for distant tokens. Groups
 * may differ per KV head. Immutable.
 *
 * <p><b>File.</b> A small text file ({@link #format()}, {@link #parse}) carrying the {@link ModelFingerprint} it was
 * calibrated on, the threshold and one line per KV head with the base layer of each layer:
 * <pre>
 * kvslab-pod-grouping 1
 * model stories260K.bin sha256:0123abcd
 * layers 5
 * query-heads 8
 * kv-heads 4
 * head-dim 8
 * delta 0.5
 * kv-head 0 base 0 0 2 2 2
 * ...
 * </pre>
 * Lines starting with {@code #} are comments. {@link #requireMatches} rejects a grouping used with another model.
 */
public final class LayerGrouping {
    static final String MAGIC = "kvslab-pod-grouping";
    static final int VERSION = 1;

    private final ModelFingerprint model;
    private final double delta;
    private final int[][] base;   // [kvHead][layer]

    /**
     * A grouping from its base-layer map, as {@link #parse} and the factories build it.
     *
     * @param model the model the grouping was calibrated on
     * @param delta the similarity threshold used (informational; NaN if hand-made)
     * @param base  {@code [kvHead][layer]}: base layer of each layer; every group is a run of consecutive layers whose
     *              base is its lowest layer
     * @throws KvArgumentException if the map is not such a partition or does not fit the model's geometry
     */
    public LayerGrouping(ModelFingerprint model, double delta, int[][] base) {
        if (model == null || base == null) {
            throw new KvArgumentException("a grouping needs a model fingerprint and a base-layer map (got null)");
        }
        if (base.length != model.kvHeads()) {
            throw new KvArgumentException("the base-layer map has " + base.length + " KV heads, the model "
                    + model.kvHeads());
        }
        int[][] copy = new int[base.length][];
        for (int h = 0; h < base.length; h++) {
            copy[h] = checkHead(h, base[h], model.layers());
        }
        this.model = model;
        this.delta = delta;
        this.base = copy;
    }

    /**
     * Every layer its own group: no sharing (PoD off).
     *
     * @param model the model the grouping is for
     * @return a grouping with one group per layer for every KV head, {@code delta} {@code NaN}
     */
    public static LayerGrouping identity(ModelFingerprint model) {
        int[][] b = new int[model.kvHeads()][model.layers()];
        for (int[] row : b) {
            for (int l = 0; l < row.length; l++) {
                row[l] = l;
            }
        }
        return new LayerGrouping(model, Double.NaN, b);
    }

    /**
     * Groups from their sizes per KV head, bottom-up: {@code sizes[h] = {2, 3}} makes layers {0,1} and {2,3,4}.
     *
     * @param model the model the grouping is for
     * @param delta the similarity threshold to record ({@code NaN} if hand-made)
     * @param sizes {@code [kvHead][]}: each KV head's group sizes, bottom-up, each {@code >= 1}, adding up to the
     *         model's layers
     * @return the grouping
     * @throws KvArgumentException if a head's sizes do not add up to the model's layers or are not positive
     */
    public static LayerGrouping ofGroupSizes(ModelFingerprint model, double delta, int[][] sizes) {
        int[][] b = new int[sizes.length][model.layers()];
        for (int h = 0; h < sizes.length; h++) {
            int l = 0;
            for (int size : sizes[h]) {
                if (size < 1 || l + size > model.layers()) {
                    throw new KvArgumentException("group sizes of KV head " + h + " " + Arrays.toString(sizes[h])
                            + " must be >= 1 and add up to " + model.layers() + " layers");
                }
                for (int i = 0; i < size; i++) {
                    b[h][l + i] = l;
                }
                l += size;
            }
            if (l != model.layers()) {
                throw new KvArgumentException("group sizes of KV head " + h + " " + Arrays.toString(sizes[h])
                        + " add up to " + l + " layers, the model has " + model.layers());
            }
        }
        return new LayerGrouping(model, delta, b);
    }

    private static int[] checkHead(int h, int[] row, int layers) {
        if (row == null || row.length != layers) {
            throw new KvArgumentException("KV head " + h + " must give a base layer for each of the " + layers
                    + " layers, got " + (row == null ? "null" : row.length));
        }
        for (int l = 0; l < layers; l++) {
            int b = row[l];
            boolean ok = l == 0 ? b == 0 : b == l || b == row[l - 1];
            if (!ok) {
                throw new KvArgumentException("KV head " + h + ": base layers " + Arrays.toString(row) + " do not "
                        + "form groups of consecutive layers based on their lowest layer (layer " + l + " has base "
                        + b + "; allowed: " + l + (l > 0 ? " or " + row[l - 1] : "") + ")");
            }
        }
        return row.clone();
    }

    /**
     * The model this grouping was calibrated on.
     *
     * @return the fingerprint (weights and geometry)
     */
    public ModelFingerprint model() {
        return model;
    }

    /**
     * The similarity threshold the grouping was calibrated with ({@code NaN} if hand-made).
     *
     * @return the threshold, in {@code [0, 1]}, or {@code NaN}
     */
    public double delta() {
        return delta;
    }

    /**
     * Layers of the model the grouping covers.
     *
     * @return the layer count, {@code >= 1}
     */
    public int layers() {
        return model.layers();
    }

    /**
     * KV heads of the model the grouping covers (one grouping per KV head).
     *
     * @return the KV head count, {@code >= 1}
     */
    public int kvHeads() {
        return model.kvHeads();
    }

    /**
     * The layer whose keys {@code layer} uses for distant tokens of {@code kvHead} (itself for a base layer).
     *
     * @param kvHead KV head, in {@code [0, kvHeads())}
     * @param layer layer, in {@code [0, layers())}
     * @return the base layer, {@code <= layer}
     */
    public int baseLayer(int kvHead, int layer) {
        if (kvHead < 0 || kvHead >= base.length || layer < 0 || layer >= model.layers()) {
            throw new KvArgumentException("(kvHead, layer) must be in [0, " + base.length + ") x [0, "
                    + model.layers() + "), got (" + kvHead + ", " + layer + ")");
        }
        return base[kvHead][layer];
    }

    /**
     * Base layer of each layer for one KV head (a copy).
     *
     * @param kvHead KV head, in {@code [0, kvHeads())}
     * @return a new array of {@code layers()} base layers
     */
    public int[] baseLayers(int kvHead) {
        return base[kvHead].clone();
    }

    /**
     * Number of groups of one KV head (m in the paper's saving formula).
     *
     * @param kvHead KV head, in {@code [0, kvHeads())}
     * @return the number of groups, in {@code [1, layers()]}
     */
    public int groupCount(int kvHead) {
        int m = 0;
        for (int l = 0; l < base[kvHead].length; l++) {
            m += base[kvHead][l] == l ? 1 : 0;
        }
        return m;
    }

    /**
     * (layer, KV head) pairs that share a lower layer's keys: sum over heads of (L - m).
     *
     * @return the count, in {@code [0, layers() * kvHeads())}; 0 when nothing is shared
     */
    public int sharingLayerHeads() {
        int n = 0;
        for (int h = 0; h < base.length; h++) {
            n += model.layers() - groupCount(h);
        }
        return n;
    }

    /**
     * The groups of one KV head as layer lists, e.g. {@code [[0, 1], [2, 3, 4]]}.
     *
     * @param kvHead KV head, in {@code [0, kvHeads())}
     * @return an unmodifiable list of groups, each an ascending list of layers
     */
    public List<List<Integer>> groups(int kvHead) {
        List<List<Integer>> out = new ArrayList<>();
        for (int l = 0; l < model.layers(); l++) {
            if (base[kvHead][l] == l) {
                out.add(new ArrayList<>());
            }
            out.get(out.size() - 1).add(l);
        }
        return out;
    }

    /**
     * Compact description, e.g. {@code h0 [0 1][2 3 4] | h1 [0][1 2 3 4]}.
     *
     * @return one line, for logs and reports
     */
    public String describeGroups() {
        StringBuilder sb = new StringBuilder();
        for (int h = 0; h < base.length; h++) {
            sb.append(h == 0 ? "" : " | ").append('h').append(h).append(' ');
            for (List<Integer> g : groups(h)) {
                sb.append('[');
                for (int i = 0; i < g.size(); i++) {
                    sb.append(i == 0 ? "" : " ").append(g.get(i));
                }
                sb.append(']');
            }
        }
        return sb.toString();
    }

    /**
     * Throws {@link KvArgumentException} unless this grouping was calibrated on {@code actual} (same weights
     * identifier and geometry).
     *
     * @param actual the fingerprint of the model in use
     */
    public void requireMatches(ModelFingerprint actual) {
        if (actual == null) {
            throw new KvArgumentException("no model fingerprint given to check the grouping against");
        }
        if (!model.equals(actual)) {
            throw new KvArgumentException("this PoD layer grouping was calibrated for model " + model.describe()
                    + " but is used with model " + actual.describe() + "; a grouping only applies to the weights it "
                    + "was calibrated on: recalibrate it for this model (kvslab pod calibrate)");
        }
    }

    /**
     * Throws {@link KvArgumentException} unless a store layout has the grouping's geometry.
     *
     * @param layout the store's layout
     */
    public void requireMatches(KvLayout layout) {
        if (!model.matches(layout)) {
            throw new KvArgumentException("this PoD layer grouping is for model " + model.describe()
                    + " but the store has " + layout.layers() + " layers, " + layout.queryHeads() + " query heads, "
                    + layout.kvHeads() + " KV heads, head dim " + layout.headDim());
        }
    }

    // ---------------------------------------------------------------- file

    /**
     * The grouping as the text of a grouping file.
     *
     * @return the file text, as {@link #parse} reads it
     */
    public String format() {
        StringBuilder sb = new StringBuilder();
        sb.append(MAGIC).append(' ').append(VERSION).append('\n');
        sb.append("# PoD head-wise layer grouping: per KV head, the base layer whose keys each layer uses for distant "
                + "tokens\n");
        sb.append("model ").append(model.modelId()).append('\n');
        sb.append("layers ").append(model.layers()).append('\n');
        sb.append("query-heads ").append(model.queryHeads()).append('\n');
        sb.append("kv-heads ").append(model.kvHeads()).append('\n');
        sb.append("head-dim ").append(model.headDim()).append('\n');
        sb.append("delta ").append(Double.isNaN(delta) ? "none" : String.format(Locale.ROOT, "%s", delta))
                .append('\n');
        for (int h = 0; h < base.length; h++) {
            sb.append("kv-head ").append(h).append(" base");
            for (int b : base[h]) {
                sb.append(' ').append(b);
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    /**
     * Parses the text of a grouping file; {@code source} names it in error messages.
     *
     * @param text the file text
     * @param source a name for the text (a path), used only in error messages
     * @return the grouping
     * @throws KvArgumentException if the text is malformed (the message names the line and what is expected)
     */
    public static LayerGrouping parse(String text, String source) {
        String[] lines = text.split("\r?\n");
        String modelId = null;
        int layers = -1;
        int queryHeads = -1;
        int kvHeads = -1;
        int headDim = -1;
        double delta = Double.NaN;
        boolean deltaSeen = false;
        List<int[]> heads = new ArrayList<>();
        boolean magic = false;
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            String where = source + " line " + (i + 1);
            if (!magic) {
                if (!line.equals(MAGIC + " " + VERSION)) {
                    throw new KvArgumentException(where + ": expected the header '" + MAGIC + " " + VERSION
                            + "', got '" + line + "'; this is not a KVSlab PoD grouping file of a supported version");
                }
                magic = true;
                continue;
            }
            int sp = line.indexOf(' ');
            String key = sp < 0 ? line : line.substring(0, sp);
            String rest = sp < 0 ? "" : line.substring(sp + 1).strip();
            switch (key) {
                case "model" -> modelId = rest;
                case "layers" -> layers = intValue(where, key, rest);
                case "query-heads" -> queryHeads = intValue(where, key, rest);
                case "kv-heads" -> kvHeads = intValue(where, key, rest);
                case "head-dim" -> headDim = intValue(where, key, rest);
                case "delta" -> {
                    deltaSeen = true;
                    if (!rest.equals("none")) {
                        try {
                            delta = Double.parseDouble(rest);
                        } catch (NumberFormatException e) {
                            throw new KvArgumentException(where + ": delta must be a number or 'none', got '"
                                    + rest + "'");
                        }
                    }
                }
                case "kv-head" -> {
                    String[] t = rest.split("\\s+");
                    if (t.length < 2 || !t[1].equals("base")) {
                        throw new KvArgumentException(where + ": expected 'kv-head H base B0 B1 ...', got '"
                                + line + "'");
                    }
                    int h = intValue(where, "kv-head", t[0]);
                    if (h != heads.size()) {
                        throw new KvArgumentException(where + ": KV heads must be listed in order 0, 1, ...; "
                                + "expected kv-head " + heads.size() + ", got " + h);
                    }
                    int[] row = new int[t.length - 2];
                    for (int j = 0; j < row.length; j++) {
                        row[j] = intValue(where, "base layer", t[j + 2]);
                    }
                    heads.add(row);
                }
                default -> throw new KvArgumentException(where + ": unknown entry '" + key + "'; expected model, "
                        + "layers, query-heads, kv-heads, head-dim, delta or kv-head");
            }
        }
        if (!magic || modelId == null || layers < 0 || queryHeads < 0 || kvHeads < 0 || headDim < 0 || !deltaSeen) {
            throw new KvArgumentException(source + " is incomplete: a grouping file needs the header '" + MAGIC
                    + " " + VERSION + "' and the entries model, layers, query-heads, kv-heads, head-dim, delta and "
                    + "one kv-head line per KV head");
        }
        ModelFingerprint fp;
        try {
            fp = new ModelFingerprint(modelId, layers, queryHeads, kvHeads, headDim);
        } catch (KvArgumentException e) {
            throw new KvArgumentException(source + ": " + e.getMessage());
        }
        if (heads.size() != kvHeads) {
            throw new KvArgumentException(source + " lists " + heads.size() + " kv-head lines for kv-heads "
                    + kvHeads);
        }
        try {
            return new LayerGrouping(fp, delta, heads.toArray(new int[0][]));
        } catch (KvArgumentException e) {
            throw new KvArgumentException(source + ": " + e.getMessage());
        }
    }

    private static int intValue(String where, String key, String v) {
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new KvArgumentException(where + ": " + key + " must be an integer, got '" + v + "'");
        }
    }

    /**
     * Writes the grouping file atomically (temporary file, then move).
     *
     * @param file the target path; its parent directory must exist, and the path be a regular file or nothing
     * @throws java.io.UncheckedIOException if the file cannot be written, or the path exists and is not a regular
     *                                      file
     */
    public void save(Path file) {
        try {
            // the move below would replace a device, FIFO or directory entry itself: only a regular file is replaced
            if (Files.exists(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)
                    && !Files.isRegularFile(file, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                throw new java.nio.file.FileSystemException(file.toString(), null,
                        "exists and is not a regular file (a device, FIFO, directory or link); only a regular file is "
                                + "replaced");
            }
            Path dir = file.toAbsolutePath().getParent();
            Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
            try {
                Files.writeString(tmp, format(), StandardCharsets.UTF_8);
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the PoD grouping file " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Reads a grouping file (format checked; use {@link #load(Path, ModelFingerprint)} to check the model too).
     *
     * @param file the grouping file
     * @return the grouping
     * @throws KvArgumentException if the file is malformed
     */
    public static LayerGrouping load(Path file) {
        try {
            return parse(Files.readString(file, StandardCharsets.UTF_8), file.toString());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the PoD grouping file " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Reads a grouping file and rejects it unless it was calibrated on {@code model}.
     *
     * @param file the grouping file
     * @param model the fingerprint of the model in use
     * @return the grouping
     * @throws KvArgumentException if the file is malformed or was calibrated for another model
     */
    public static LayerGrouping load(Path file, ModelFingerprint model) {
        LayerGrouping g = load(file);
        try {
            g.requireMatches(model);
        } catch (KvArgumentException e) {
            throw new KvArgumentException(file + ": " + e.getMessage());
        }
        return g;
    }

    /**
     * The conventional grouping file next to a model file: {@code <model file>.pod-groups}.
     *
     * @param modelFile the model's weights file
     * @return the path of the grouping file beside it (it may not exist)
     */
    public static Path besideModel(Path modelFile) {
        return modelFile.resolveSibling(modelFile.getFileName() + ".pod-groups");
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LayerGrouping g && g.model.equals(model) && Arrays.deepEquals(g.base, base)
                && Double.compare(g.delta, delta) == 0;
    }

    @Override
    public int hashCode() {
        return model.hashCode() * 31 + Arrays.deepHashCode(base);
    }

    @Override
    public String toString() {
        return "LayerGrouping[" + model.modelId() + ", delta " + delta + ": " + describeGroups() + "]";
    }
}
