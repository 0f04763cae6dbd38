package io.kvslab.bench.eval.pod;

import io.kvslab.bench.eval.EvalTextSet;
import io.kvslab.bench.eval.RunComparison;
import io.kvslab.bench.eval.TeacherForcing;
import io.kvslab.bench.eval.fidelity.FidelityConfig;
import io.kvslab.bench.model.AttentionObserver;
import io.kvslab.bench.model.ReferenceAttention;
import io.kvslab.bench.model.KernelAttention;
import io.kvslab.bench.model.KvCache;
import io.kvslab.bench.model.LlamaModel;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.ModelConfig;
import io.kvslab.bench.model.SequenceAttention;
import io.kvslab.bench.model.Session;
import io.kvslab.bench.model.StoreKvCache;
import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.policy.Compressor;
import io.kvslab.pod.LayerGrouping;
import io.kvslab.pod.LayerSimilarity;
import io.kvslab.pod.PodConfig;
import io.kvslab.pod.PodSharing;
import io.kvslab.pod.PodVariant;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Policies;
import io.kvslab.policy.Selection;
import io.kvslab.policy.LayerContext;
import io.kvslab.bench.eval.WholeContext;
import io.kvslab.policy.LayerInputs;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;

/**
 * The PoD rows of {@code kvslab eval fidelity --pod}: what sharing distant keys across layers costs stories260K,
 * which was <em>not</em> post-trained for it, measured with the fidelity protocol (docs/fidelity.md, docs/pod.md).
 *
 * <p>Per text (same texts, split and block size as the fidelity rows): a full run prefills the context densely and
 * teacher-forces the continuation. Each PoD run prefills the same context densely, then turns sharing on: every
 * non-base (layer, KV head) demotes the key blocks wholly distant for the next query to aliases of its base layer's
 * blocks (own copies freed), and keeps doing so at every continuation step while it attends (v2: ordinary attention
 * over the aliased table; v1: base-layer queries on the aliased blocks, LSE merge). Groupings are calibrated on
 * separate texts ({@link PodCalibration}). PoD + SnapKV applies a SnapKV selection made consistent within every
 * group (each layer takes its base layer's selection, so positions match and blocks can be shared), then shares.
 * The equal-memory rows run SnapKV and StreamingLLM at the fraction of KV bytes the PoD run held on the same text.
 */
public final class PodEvaluation {
    private PodEvaluation() {
    }

    /** Runs the PoD rows; {@code progress} receives one line per text and one for the calibration (may be null). */
    public static PodReport run(LoadedModel loaded, EvalTextSet texts, FidelityConfig cfg, PodEvalConfig pod,
                                Consumer<String> progress) {
        long started = System.nanoTime();
        LlamaModel model = loaded.model();
        ModelConfig c = model.config();
        KvLayout layout = new KvLayout(c.layers(), c.heads(), c.kvHeads(), c.headDim(), DType.F32,
                cfg.tokensPerBlock());

        // groupings: calibrated per delta (one similarity measurement), or the headline one from a file
        LayerSimilarity similarity = null;
        Map<Double, LayerGrouping> groupings = new LinkedHashMap<>();
        List<Double> deltas = new ArrayList<>(pod.deltas());
        if (!deltas.contains(pod.headlineDelta())) {
            deltas.add(pod.headlineDelta());
        }
        boolean needCalibration = pod.groupingFile() == null || deltas.size() > 1;
        if (needCalibration) {
            long t0 = System.nanoTime();
            similarity = PodCalibration.measure(model, PodCalibration.texts(loaded, pod.calibrationTexts()),
                    pod.calibrationQueries());
            if (progress != null) {
                progress.accept(String.format(Locale.ROOT, "PoD calibration: %d texts x %d queries in %.1f s",
                        pod.calibrationTexts(), pod.calibrationQueries(), (System.nanoTime() - t0) / 1e9));
            }
        }
        for (double d : deltas) {
            if (pod.groupingFile() != null && d == pod.headlineDelta()) {
                groupings.put(d, LayerGrouping.load(pod.groupingFile(), PodCalibration.fingerprint(model)));
            } else {
                groupings.put(d, PodCalibration.group(similarity, model, d));
            }
        }

        List<Setting> settings = settings(pod, groupings, layout);
        Map<String, Accumulator> acc = new LinkedHashMap<>();
        int used = 0;
        long contextTokens = 0;
        try (Compressor kernels = new Compressor()) {
            CompressionPolicy snap = snapKv(cfg);
            CompressionPolicy streaming = Policies.streamingLlm();
            for (EvalTextSet.Story story : texts.stories()) {
                if (used == cfg.stories()) {
                    break;
                }
                int[] tokens = story.tokens(loaded.tokenizer().bos());
                long cap = Math.min(c.contextLength(), (long) cfg.maxContext() + cfg.continuation());
                if (tokens.length > cap) {
                    tokens = java.util.Arrays.copyOf(tokens, (int) cap);
                }
                int context = tokens.length - cfg.continuation();
                if (context < cfg.minContext()) {
                    continue;
                }
                used++;
                contextTokens += context;
                Run full = Run.full(model, layout, cfg, tokens, context);
                Map<String, Double> podBytes = new LinkedHashMap<>();
                for (Setting s : settings) {
                    Selection selection = null;
                    double fraction = s.snapBudget;
                    if (s.equalMemoryOf != null) {
                        fraction = Math.min(1, podBytes.get(s.equalMemoryOf));
                    }
                    if (!Double.isNaN(fraction)) {
                        CompressionPolicy p = s.method.equals("streamingllm") ? streaming : snap;
                        selection = p.select(full.atContext, Budget.fraction(fraction), kernels);
                        if (s.sharing != null) {
                            selection = new Selection(s.sharing.groupConsistent(selection.kept()),
                                    selection.lengthsBefore());
                        }
                    }
                    Run r = Run.compressed(model, layout, cfg, tokens, context, s.sharing, selection);
                    double bytes = (double) r.contextLiveBytes / full.contextLiveBytes;
                    podBytes.put(s.key(), bytes);
                    RunComparison cmp = RunComparison.of(full.logits, r.logits, tokens, context, tokens.length);
                    acc.computeIfAbsent(s.key(), k -> new Accumulator(s))
                            .add(bytes, (double) r.endLiveBytes / full.endLiveBytes, cmp);
                }
                if (progress != null) {
                    progress.accept(String.format(Locale.ROOT, "PoD text %d (seed %d): %d context + %d continuation "
                            + "tokens, %d settings", used, story.seed(), context, cfg.continuation(), settings.size()));
                }
            }
        }
        if (used == 0) {
            throw new IllegalArgumentException("no text of the set has " + cfg.minContext() + " context tokens plus "
                    + cfg.continuation() + " continuation tokens; lower --min-context or --continuation");
        }
        List<PodResult> rows = new ArrayList<>();
        for (Accumulator a : acc.values()) {
            rows.add(a.result());
        }
        Map<String, String> groupText = new LinkedHashMap<>();
        groupings.forEach((d, g) -> groupText.put(deltaLabel(d), g.describeGroups()));
        double[][][] matrix = similarity == null ? null : similarity.kvHeadMatrix();
        return new PodReport(model.name(), PodCalibration.fingerprint(model).modelId(), cfg, pod, used,
                (double) contextTokens / used, rows, groupText, matrix, (System.nanoTime() - started) / 1e9);
    }

    /** SnapKV with the fidelity eval's observation window and pooling. */
    static CompressionPolicy snapKv(FidelityConfig cfg) {
        return Policies.snapKv().withWindowScoring(cfg.window(), cfg.pooling(), cfg.kernel());
    }

    static String deltaLabel(double d) {
        return String.format(Locale.ROOT, "%.2f", d).replaceAll("0$", "");
    }

    /** One row to run: PoD (sharing != null) and/or a selection (fixed budget, or the bytes of another row). */
    private record Setting(String method, String setting, PodSharing sharing, int sharedLayerHeads,
                           double snapBudget, String equalMemoryOf) {
        String key() {
            return method + " " + setting;
        }
    }

    private static List<Setting> settings(PodEvalConfig pod, Map<Double, LayerGrouping> groupings, KvLayout layout) {
        List<Setting> out = new ArrayList<>();
        List<Double> rowDeltas = new ArrayList<>(pod.deltas());
        if (!rowDeltas.contains(pod.headlineDelta())) {
            rowDeltas.add(pod.headlineDelta());   // the equal-memory rows refer to the headline v2 rows
        }
        for (double d : rowDeltas) {
            LayerGrouping g = groupings.get(d);
            for (int nr : pod.recents()) {
                out.add(podSetting("pod-v2", d, nr, g, PodVariant.V2_SHARED_KEYS, pod, layout));
                out.add(podSetting("pod-v1", d, nr, g, PodVariant.V1_SHARED_SCORES, pod, layout));
            }
        }
        LayerGrouping head = groupings.get(pod.headlineDelta());
        if (pod.equalMemory()) {
            for (int nr : pod.recents()) {
                Setting p = podSetting("pod-v2", pod.headlineDelta(), nr, head, PodVariant.V2_SHARED_KEYS, pod,
                        layout);
                for (String m : List.of("snapkv", "streamingllm")) {
                    // v1 and v2 hold the same bytes: one comparison serves both
                    out.add(new Setting(m, "= mem(pod " + p.setting() + ")", null, 0, Double.NaN, p.key()));
                }
            }
        }
        int nr = pod.recents().stream().min(Integer::compare).orElseThrow();
        for (double b : pod.snapBudgets()) {
            String budget = String.format(Locale.ROOT, "%.0f%%", 100 * b);
            Setting base = podSetting("pod-v2+snapkv", pod.headlineDelta(), nr, head, PodVariant.V2_SHARED_KEYS, pod,
                    layout);
            Setting combined = new Setting(base.method, "snapkv " + budget + ", " + base.setting, base.sharing,
                    base.sharedLayerHeads, b, null);
            out.add(combined);
            out.add(new Setting("snapkv", budget, null, 0, b, null));
            if (pod.equalMemory()) {
                out.add(new Setting("snapkv", "= mem(" + combined.key() + ")", null, 0, Double.NaN,
                        combined.key()));
            }
        }
        return out;
    }

    private static Setting podSetting(String method, double delta, int nr, LayerGrouping g, PodVariant v,
                                      PodEvalConfig pod, KvLayout layout) {
        PodSharing sharing = new PodSharing(g, new PodConfig(pod.sinks(), nr, v), layout);
        return new Setting(method, "delta " + deltaLabel(delta) + ", n_s " + pod.sinks() + ", n_r " + nr, sharing,
                g.sharingLayerHeads(), Double.NaN, null);
    }

    /** One teacher-forced run of a text on its own store. */
    private static final class Run {
        float[][] logits;
        long contextLiveBytes;
        long endLiveBytes;
        List<LayerContext> atContext;

        static SequenceAttention attention(FidelityConfig cfg) {
            return cfg.attention().equals("java") ? new ReferenceAttention() : KernelAttention.create(1);
        }

        /** The dense run; also records SnapKV's inputs (rows and the last window queries) after the context. */
        static Run full(LlamaModel model, KvLayout layout, FidelityConfig cfg, int[] tokens, int context) {
            ModelConfig c = model.config();
            int dim = c.dim();
            int w = Math.min(cfg.window(), context);
            float[][] windowQ = new float[c.layers()][w * dim];
            AttentionObserver observer = (layer, positions, n, q, out) -> {
                for (int t = 0; t < n; t++) {
                    long p = positions[t];
                    if (p >= context - w && p < context) {
                        System.arraycopy(q, t * dim, windowQ[layer], (int) (p - (context - w)) * dim, dim);
                    }
                }
            };
            long[] windowPositions = new long[w];
            for (int i = 0; i < w; i++) {
                windowPositions[i] = context - w + i;
            }
            Run r = new Run();
            try (KvStore store = KvStore.open(layout)) {
                Sequence seq = store.newSequence();
                try (Session session = new Session(model, new StoreKvCache(seq, attention(cfg)), MatMul.JAVA,
                        Session.DEFAULT_CHUNK)) {
                    session.observer(observer);
                    r.logits = TeacherForcing.run(session, tokens, context, s -> {
                        List<LayerInputs> windows = new ArrayList<>();
                        for (int l = 0; l < c.layers(); l++) {
                            windows.add(LayerInputs.window(windowQ[l].clone(), windowPositions));
                        }
                        r.atContext = WholeContext.read(seq, windows);
                        r.contextLiveBytes = store.stats().liveBytes();
                    });
                    r.endLiveBytes = store.stats().liveBytes();
                }
            }
            return r;
        }

        /** A run with a selection applied after the context (may be null), then PoD sharing (may be null). */
        static Run compressed(LlamaModel model, KvLayout layout, FidelityConfig cfg, int[] tokens, int context,
                              PodSharing sharing, Selection selection) {
            Run r = new Run();
            try (KvStore store = KvStore.open(layout)) {
                Sequence seq = store.newSequence();
                KvCache cache;
                PodKvCache podCache = null;
                if (sharing != null) {
                    podCache = new PodKvCache(seq, attention(cfg), sharing);
                    cache = podCache;
                } else {
                    cache = new StoreKvCache(seq, attention(cfg));
                }
                PodKvCache pc = podCache;
                try (Session session = new Session(model, cache, MatMul.JAVA, Session.DEFAULT_CHUNK)) {
                    r.logits = TeacherForcing.run(session, tokens, context, s -> {
                        if (selection != null) {
                            selection.applyTo(seq);
                        }
                        if (pc != null) {
                            pc.startSharing(context);
                        }
                        r.contextLiveBytes = store.stats().liveBytes();
                    });
                    r.endLiveBytes = store.stats().liveBytes();
                }
            }
            return r;
        }
    }

    /** Sums over texts for one setting. */
    private static final class Accumulator {
        final Setting setting;
        int texts;
        double bytes;
        double endBytes;
        double kl;
        double maxKl;
        double top1;
        double logPplFull;
        double logPpl;

        Accumulator(Setting setting) {
            this.setting = setting;
        }

        void add(double bytesFraction, double endFraction, RunComparison cmp) {
            texts++;
            bytes += bytesFraction;
            endBytes += endFraction;
            kl += cmp.meanKl();
            maxKl = Math.max(maxKl, cmp.maxKl());
            top1 += cmp.top1Agreement();
            logPplFull += Math.log(cmp.referencePerplexity());
            logPpl += Math.log(cmp.otherPerplexity());
        }

        PodResult result() {
            return new PodResult(setting.method, setting.setting, texts, setting.sharedLayerHeads, bytes / texts,
                    endBytes / texts, kl / texts, maxKl, top1 / texts, Math.exp(logPplFull / texts),
                    Math.exp(logPpl / texts));
        }
    }
}
