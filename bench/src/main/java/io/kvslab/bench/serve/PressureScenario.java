package io.kvslab.bench.serve;

import io.kvslab.DType;
import io.kvslab.KvLayout;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.StoreKvCache;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The pressure scenario of docs/serving.md: the same greedy requests, all offered at once, run twice on the
 * scheduler (the server's core, without HTTP): unconstrained, then with a KV limit at a fraction of what they need
 * together and a pressure policy. Reports completion, peak KV bytes against the limit, the share of requests
 * compressed or recomputed, and for each compressed one its greedy-token agreement with its unconstrained run
 * (position by position, over the longer of the two).
 */
final class PressureScenario {
    /** Story openings for stories260K; requests cycle through them. */
    static final List<String> PROMPTS = List.of("Once upon a time", "Lily and Ben", "The little dog",
            "Tom had a red ball", "One day, a girl named Sue went to the park", "The sun was shining",
            "There was a big tree", "Mia wanted to fly");

    /**
     * @param requests     requests offered at once
     * @param maxTokens    tokens each generates at most
     * @param loadFraction the limit as a fraction of the KV bytes all requests need at once
     * @param slabBytes    the store's slab size
     * @param pressure     the {@code --pressure} spec
     * @param maxBatch     the scheduler's batch bound
     */
    record Setup(int requests, int maxTokens, double loadFraction, long slabBytes, String pressure, int maxBatch) {}

    /** One request's outcome in both runs. */
    record Outcome(int[] free, int[] constrained, boolean ok, int compressions, int recomputes, int swaps) {
        /** Positions where both runs have the same token, over the longer run's length (1 when both are empty). */
        double agreement() {
            int n = Math.max(free.length, constrained.length);
            if (n == 0) {
                return 1.0;
            }
            int same = 0;
            for (int i = 0; i < Math.min(free.length, constrained.length); i++) {
                same += free[i] == constrained[i] ? 1 : 0;
            }
            return (double) same / n;
        }
    }

    record Result(Setup setup, long limitBytes, long offeredBytes, long peakLiveBytes, long peakReservedBytes,
                  List<Outcome> outcomes, long compressions, long recomputes, long swaps, double freeSeconds,
                  double constrainedSeconds) {
        long completed() {
            return outcomes.stream().filter(Outcome::ok).count();
        }

        double share(java.util.function.Predicate<Outcome> p) {
            return (double) outcomes.stream().filter(p).count() / outcomes.size();
        }

        /** Agreement of the compressed requests, sorted ascending (empty if none was compressed). */
        double[] compressedAgreement() {
            return outcomes.stream().filter(o -> o.compressions() > 0).mapToDouble(Outcome::agreement).sorted()
                    .toArray();
        }

        double[] recomputedAgreement() {
            return outcomes.stream().filter(o -> o.recomputes() > 0 && o.compressions() == 0)
                    .mapToDouble(Outcome::agreement).sorted().toArray();
        }

        static double median(double[] sorted) {
            if (sorted.length == 0) {
                return Double.NaN;
            }
            int m = sorted.length / 2;
            return sorted.length % 2 == 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
        }

        long tokens(boolean constrained) {
            return outcomes.stream().mapToLong(o -> (constrained ? o.constrained() : o.free()).length).sum();
        }

        String report() {
            double[] ca = compressedAgreement();
            double[] ra = recomputedAgreement();
            return String.format(Locale.ROOT, """
                    pressure scenario: %d requests x %d max tokens, policy %s, slab %d B
                      KV offered %d B, limit %d B (%.0f%%); peak live %d B = %.1f%% of the limit; peak reserved %d B
                      completed %d/%d; compressed %.0f%%, recomputed %.0f%%, swapped %.0f%% of requests \
                    (decisions: %d compress, %d recompute, %d swap)
                      greedy agreement with the unconstrained run: compressed median %.3f (min %.3f, n=%d); \
                    recomputed median %.3f (n=%d)
                      tokens/s: unconstrained %.0f, constrained %.0f (ratio %.2f)""",
                    outcomes.size(), setup.maxTokens(), setup.pressure(), setup.slabBytes(), offeredBytes, limitBytes,
                    100.0 * limitBytes / offeredBytes, peakLiveBytes, 100.0 * peakLiveBytes / limitBytes,
                    peakReservedBytes, completed(), outcomes.size(), 100 * share(o -> o.compressions() > 0),
                    100 * share(o -> o.recomputes() > 0), 100 * share(o -> o.swaps() > 0), compressions, recomputes,
                    swaps, median(ca), ca.length == 0 ? Double.NaN : ca[0], ca.length, median(ra), ra.length,
                    tokens(false) / freeSeconds, tokens(true) / constrainedSeconds,
                    (tokens(false) / freeSeconds) / (tokens(true) / constrainedSeconds));
        }
    }

    private PressureScenario() {
    }

    static Result run(LoadedModel model, Setup setup) throws InterruptedException {
        List<CompletionRequest> requests = new ArrayList<>();
        long offered = 0;
        KvLayout layout = StoreKvCache.layout(model.model().config(), DType.F32);
        for (int i = 0; i < setup.requests(); i++) {
            int[] prompt = model.tokenizer().encode(PROMPTS.get(i % PROMPTS.size()), true, false);
            requests.add(new CompletionRequest(prompt, setup.maxTokens(), 0f, 1f, 1, List.of(), false, false, true));
            offered += ServeStore.bytesFor(layout, prompt.length + setup.maxTokens());
        }
        long limit = (long) (offered * setup.loadFraction());
        ServeConfig base = ServeConfig.defaults().withMaxBatch(setup.maxBatch());
        Run free = runAll(model, base, requests);
        Run constrained = runAll(model, base.withKvLimit(limit, setup.slabBytes()).withPressure(setup.pressure()),
                requests);
        List<Outcome> outcomes = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            Job j = constrained.jobs.get(i);
            outcomes.add(new Outcome(free.tokens.get(i), constrained.tokens.get(i), constrained.ok[i],
                    j.compressions, j.recomputes, j.swaps));
        }
        ServerMetrics m = constrained.metrics;
        return new Result(setup, limit, offered, constrained.peakLive, constrained.peakReserved, outcomes,
                m.compressions.sum(), m.recomputes.sum(), m.swaps.sum(), free.seconds, constrained.seconds);
    }

    private record Run(List<Job> jobs, List<int[]> tokens, boolean[] ok, ServerMetrics metrics, long peakLive,
                       long peakReserved, double seconds) {}

    private static Run runAll(LoadedModel model, ServeConfig config, List<CompletionRequest> requests)
            throws InterruptedException {
        ServerMetrics metrics = new ServerMetrics();
        List<Job> jobs = new ArrayList<>();
        List<int[]> tokens = new ArrayList<>();
        boolean[] ok = new boolean[requests.size()];
        try (Scheduler s = new Scheduler(model, config, metrics)) {
            s.start();
            long t0 = System.nanoTime();
            for (CompletionRequest r : requests) {
                Job j = new Job(r, System.nanoTime());
                jobs.add(j);
                s.submit(j);
            }
            for (int i = 0; i < jobs.size(); i++) {
                int[] ids = new int[16];
                int n = 0;
                while (true) {
                    JobEvent e = jobs.get(i).events.poll(10, TimeUnit.MINUTES);
                    if (e == null) {
                        throw new IllegalStateException("request " + i + " got no event for 10 minutes");
                    }
                    if (e instanceof JobEvent.Text t) {
                        if (t.token() >= 0) {
                            ids = n == ids.length ? Arrays.copyOf(ids, n * 2) : ids;
                            ids[n++] = t.token();
                        }
                    } else {
                        ok[i] = e instanceof JobEvent.Done;
                        if (e instanceof JobEvent.Failed f) {
                            System.err.println("pressure scenario: request " + i + " failed: " + f.message());
                        }
                        break;
                    }
                }
                tokens.add(Arrays.copyOf(ids, n));
            }
            double seconds = (System.nanoTime() - t0) / 1e9;
            var stats = s.storeStats();
            return new Run(jobs, tokens, ok, metrics, stats.peakLiveBytes(), stats.peakReservedBytes(),
                    seconds);
        }
    }
}
