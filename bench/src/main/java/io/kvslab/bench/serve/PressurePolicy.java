package io.kvslab.bench.serve;

import io.kvslab.KvArgumentException;
import io.kvslab.KvCacheManager;
import io.kvslab.KvSlabException;
import io.kvslab.Sequence;
import io.kvslab.policy.Budget;
import io.kvslab.policy.CompressionPolicy;
import io.kvslab.policy.Compressor;
import io.kvslab.policy.Policies;
import jdk.jfr.FlightRecorder;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Predicate;

/**
 * What a serving scheduler does when its next step does not fit the store's limit ({@link KvCacheManager#reserve}
 * said no): actions tried in a configured order until enough blocks are free.
 * <ul>
 *   <li>{@code compress:POLICY:BUDGET}: compress running sequences with a policy that needs no extra inputs
 *       (StreamingLLM, K-norm) to a budget (a fraction like {@code 0.5}, or rows per head like {@code 128}),
 *       lowest priority first, then the largest; each sequence at most once, so quality loss stays bounded.
 *       The sequence keeps running.</li>
 *   <li>{@code swap}: move a sequence's blocks to a slower tier and free them (lowest priority first, then the
 *       newest arrival); the scheduler brings it back later. Needs a swapper (see {@link #parse}).</li>
 *   <li>{@code recompute}: close the sequence (lowest priority first, then the newest arrival, as vLLM preempts);
 *       the scheduler queues its request again and prefills prompt and generated tokens anew.</li>
 * </ul>
 * Every action is returned as a {@link Decision} (for the caller's counters) and recorded as a JFR
 * {@code io.kvslab.Preemption} event. Confined to one thread (it owns a {@link Compressor}); close it when done.
 *
 * <p>The serving scheduler's policy, built on the library's public API only (compression, {@code Sequence.swapOut},
 * {@link KvCacheManager}); it was in {@code io.kvslab.policy} until the library boundary was cut to the types an
 * embedder needs (its spec string is the {@code --pressure} option's).
 */
final class PressurePolicy implements AutoCloseable {
    /** The kinds of action, in the words of the {@code --pressure} option. */
    enum Action {
        /** Compress the sequence with the step's policy and budget (it stays running). */
        COMPRESS,
        /** Swap the sequence out to a tier through the swapper given to {@link PressurePolicy#parse}; the scheduler brings it back later. */
        SWAP,
        /** Close the sequence; the scheduler queues its request again and computes it anew. */
        RECOMPUTE
    }

    /**
     * One configured action: compression carries its policy (by name) and budget.
     *
     * @param action what to do
     * @param policyName for {@link Action#COMPRESS}, a name of {@link Policies#NAMES}; otherwise {@code null}
     * @param budget for {@link Action#COMPRESS}, the budget to compress to; otherwise {@code null}
     * @param budgetText the budget as written in the spec (a fraction or rows per head), or {@code null}
     */
    record Step(Action action, String policyName, Budget budget, String budgetText) {
        @Override
        public String toString() {
            return action == Action.COMPRESS ? "compress:" + policyName + ":" + budgetText
                    : action.name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * A running sequence the policy may act on.
     *
     * @param sequence the sequence (open)
     * @param priority lower is preempted first
     * @param arrival  any increasing arrival stamp (later arrivals are swapped and recomputed first)
     */
    record Candidate(Sequence sequence, int priority, long arrival) {
        /**
         * Checks that the sequence is given.
         *
         * @throws KvArgumentException if {@code sequence} is null
         */
        public Candidate {
            if (sequence == null) {
                throw new KvArgumentException("a candidate needs a sequence");
            }
        }
    }

    /**
     * What was done to one sequence and how many blocks it freed in the store.
     *
     * @param action the action taken
     * @param sequence the sequence it was taken on (closed or emptied for swap and recompute)
     * @param blocksFreed blocks the store got back, {@code >= 0}
     */
    record Decision(Action action, Sequence sequence, long blocksFreed) {}

    private final List<Step> steps;
    private final List<CompressionPolicy> policies;
    private final Predicate<Sequence> swapper;
    private final Compressor compressor = new Compressor();
    /** Sequences compressed once already (by id): they are not compressed again. */
    private final Set<Long> compressed = new HashSet<>();

    private PressurePolicy(List<Step> steps, Predicate<Sequence> swapper) {
        this.steps = List.copyOf(steps);
        this.swapper = swapper;
        List<CompressionPolicy> ps = new ArrayList<>();
        for (Step s : steps) {
            ps.add(s.action() == Action.COMPRESS ? Policies.byName(s.policyName()) : null);
        }
        this.policies = ps;
    }

    /**
     * Parses {@code compress:POLICY:BUDGET,swap,recompute} (any order, each at most once, at least one). A
     * {@code swap} step needs {@code swapper}; without one it is rejected.
     *
     * @param spec the comma-separated steps
     * @param swapper moves a sequence's blocks to a tier and frees them (returns {@code true} if it swapped the
     *         sequence out and closed it, {@code false} if the tier declined and the sequence is unchanged), or
     *         {@code null} when no tier is configured
     * @return the policy
     * @throws KvArgumentException naming what is wrong and what is allowed
     */
    public static PressurePolicy parse(String spec, Predicate<Sequence> swapper) {
        if (spec == null || spec.isBlank()) {
            throw new KvArgumentException("a pressure policy needs at least one of compress:POLICY:BUDGET, swap, "
                    + "recompute");
        }
        List<Step> steps = new ArrayList<>();
        Set<Action> seen = new HashSet<>();
        for (String part : spec.split(",")) {
            String p = part.trim().toLowerCase(Locale.ROOT);
            String[] f = p.split(":");
            Action a = switch (f[0]) {
                case "compress" -> Action.COMPRESS;
                case "swap" -> Action.SWAP;
                case "recompute" -> Action.RECOMPUTE;
                default -> throw new KvArgumentException("unknown pressure action '" + part.trim() + "'; allowed: "
                        + "compress:POLICY:BUDGET, swap, recompute");
            };
            if (!seen.add(a)) {
                throw new KvArgumentException("pressure action " + f[0] + " given twice in '" + spec + "'");
            }
            if (a == Action.COMPRESS) {
                steps.add(compressStep(part.trim(), f));
            } else {
                if (f.length != 1) {
                    throw new KvArgumentException("'" + part.trim() + "': " + f[0] + " takes no parameters");
                }
                if (a == Action.SWAP && swapper == null) {
                    throw new KvArgumentException("'swap' needs a tier to swap to, and none is configured");
                }
                steps.add(new Step(a, null, null, null));
            }
        }
        return new PressurePolicy(steps, swapper);
    }

    private static Step compressStep(String part, String[] f) {
        if (f.length != 3) {
            throw new KvArgumentException("'" + part + "': write compress:POLICY:BUDGET, e.g. compress:streamingllm:0.5"
                    + " (a fraction in (0, 1]) or compress:knorm:128 (rows per head)");
        }
        CompressionPolicy policy;
        try {
            policy = Policies.byName(f[1]);
        } catch (KvArgumentException e) {
            throw new KvArgumentException("'" + part + "': " + e.getMessage());
        }
        if (policy.windowQueries() > 0 || policy.needsOutputProjection()) {
            throw new KvArgumentException("'" + part + "': policy " + f[1] + " needs window queries or W_o, which a "
                    + "scheduler does not keep; under pressure use one that needs neither: streamingllm, knorm");
        }
        Budget budget;
        try {
            budget = f[2].contains(".") ? Budget.fraction(Double.parseDouble(f[2]))
                    : Budget.tokens(Integer.parseInt(f[2]));
        } catch (NumberFormatException | KvArgumentException e) {
            throw new KvArgumentException("'" + part + "': budget '" + f[2] + "' must be a fraction in (0, 1] "
                    + "(with a dot, e.g. 0.5) or a whole number of rows per head >= 1");
        }
        return new Step(Action.COMPRESS, f[1], budget, f[2]);
    }

    /** The configured steps, in the order they are tried (an unmodifiable list, not empty). */
    List<Step> steps() {
        return steps;
    }

    /**
     * Frees at least {@code blocksNeeded} blocks if the configured actions can: each step in order, on its victims
     * in its order, until enough is free; then stops. Sequences the policy recomputes or swaps are closed or
     * emptied here: the caller reads the decisions to requeue or park their requests.
     *
     * @param running the sequences it may act on (the one that needs room may be among them)
     * @param manager the store's manager, whose free blocks the policy counts
     * @param blocksNeeded blocks the caller needs free, {@code >= 0}
     * @return the decisions taken, in order (empty if nothing could be done)
     */
    public List<Decision> relieve(KvCacheManager manager, List<Candidate> running, long blocksNeeded) {
        if (manager == null || running == null) {
            throw new KvArgumentException("manager and running must not be null");
        }
        Set<Long> live = new HashSet<>();
        for (Candidate c : running) {
            live.add(c.sequence().id());
        }
        compressed.retainAll(live);   // forget sequences that finished
        List<Decision> done = new ArrayList<>();
        Set<Sequence> gone = new HashSet<>();
        long freed = 0;
        for (int i = 0; i < steps.size() && freed < blocksNeeded; i++) {
            Step step = steps.get(i);
            for (Candidate c : victims(step.action(), running)) {
                if (freed >= blocksNeeded) {
                    break;
                }
                Sequence s = c.sequence();
                if (gone.contains(s) || s.isClosed()) {
                    continue;
                }
                if (step.action() == Action.COMPRESS && (compressed.contains(s.id()) || !shrinks(s, step.budget()))) {
                    continue;
                }
                long before = manager.usage().liveBlocks();
                PreemptionEvent event = FlightRecorder.isInitialized() ? new PreemptionEvent() : null;
                if (event != null) {
                    event.begin();
                }
                boolean acted = act(step, policies.get(i), manager, s);
                if (!acted) {
                    continue;
                }
                long got = Math.max(0, before - manager.usage().liveBlocks());
                freed += got;
                if (step.action() != Action.COMPRESS) {
                    gone.add(s);
                }
                done.add(new Decision(step.action(), s, got));
                if (event != null) {
                    record(event, step, s, got, blocksNeeded, manager);
                }
            }
        }
        return done;
    }

    private boolean act(Step step, CompressionPolicy policy, KvCacheManager manager, Sequence s) {
        switch (step.action()) {
            case COMPRESS -> {
                compressed.add(s.id());
                try {
                    compressor.compress(s, policy, step.budget());
                } catch (KvSlabException e) {
                    // a rebuild of blocks shared with a fork found no memory: the layers done so far stay compressed
                }
                return true;
            }
            case SWAP -> {
                return swapper.test(s);
            }
            case RECOMPUTE -> {
                compressed.remove(s.id());
                manager.free(s);
                return true;
            }
            default -> throw new IllegalStateException();
        }
    }

    private static List<Candidate> victims(Action a, List<Candidate> running) {
        List<Candidate> v = new ArrayList<>(running);
        Comparator<Candidate> byPriority = Comparator.comparingInt(Candidate::priority);
        if (a == Action.COMPRESS) {
            v.sort(byPriority.thenComparing(c -> -c.sequence().referencedBytes()));
        } else {
            v.sort(byPriority.thenComparing(c -> -c.arrival()));
        }
        return v;
    }

    /** Whether the budget would free at least one block of the first table (a compression that frees nothing
     * would cost quality for no memory). */
    private static boolean shrinks(Sequence s, Budget budget) {
        int n = s.length(0, 0);
        int tpb = s.layout().tokensPerBlock();
        int kept = budget.rowsFor(n);   // parse builds a fraction or a token count, never the dynamic budget
        return (kept + tpb - 1) / tpb < (n + tpb - 1) / tpb;
    }

    private static void record(PreemptionEvent e, Step step, Sequence s, long blocks, long needed, KvCacheManager m) {
        if (e.shouldCommit()) {
            long blockBytes = m.usage().blockBytes();
            e.sequenceId = s.id();
            e.action = step.action().name().toLowerCase(Locale.ROOT);
            e.detail = step.toString();
            e.bytesFreed = blocks * blockBytes;
            e.bytesNeeded = needed * blockBytes;
            e.commit();
        }
    }

    @Override
    public void close() {
        compressor.close();
    }
}
