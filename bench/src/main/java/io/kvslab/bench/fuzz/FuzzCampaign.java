package io.kvslab.bench.fuzz;

import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;
import io.kvslab.bench.model.ModelFormatException;

import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.stream.Stream;

/**
 * A seeded, structure-aware mutation fuzz campaign against the snapshot reader or a model loader (the entry point of
 * {@code ./kvslab fuzz}). Seed files are written by the real store (snapshots) or by {@link SeedModels} (GGUF,
 * llama2.c) and parsed into their fields; each case mutates one of them ({@link Mutator}, {@link CaseGenerator}),
 * writes it to a temporary directory and reads it on a worker thread with a per-case timeout: a case that does not
 * finish is counted as a hang and abandoned (its daemon thread is left behind, a fresh worker takes over).
 *
 * <p>Cases are deterministic in (target, seed, case id), so any finding can be reproduced from its id.
 */
public final class FuzzCampaign {
    /** Findings kept in a report, with their stack traces. */
    static final int MAX_FINDINGS = 10;

    private FuzzCampaign() {}

    /**
     * Runs {@code cases} cases of {@code target} with campaign seed {@code seed}.
     *
     * @param perCaseTimeout  a case running longer is a hang (positive)
     * @param progressOrNull  receives a progress line every 5 % of the cases, or null for none
     */
    public static FuzzReport run(FuzzTarget target, long cases, long seed, Duration perCaseTimeout,
                                 PrintStream progressOrNull) {
        if (target == null || cases < 0 || perCaseTimeout == null || perCaseTimeout.isNegative()
                || perCaseTimeout.isZero()) {
            throw new KvArgumentException("fuzz needs a target, cases >= 0 and a positive per-case timeout; got "
                    + target + ", " + cases + ", " + perCaseTimeout);
        }
        Path dir;
        try {
            dir = Files.createTempDirectory("kvslab-fuzz-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a temporary directory for fuzz cases", e);
        }
        try {
            return campaign(target, 0, cases, seed, perCaseTimeout, progressOrNull, dir, id -> { });
        } finally {
            deleteTree(dir);
        }
    }

    /**
     * Like {@link #run}, but every batch of {@code batchCases} cases runs in a child JVM (same java, JVM flags and
     * class path), so a case that crashes the JVM (SIGSEGV) is counted as a crash, reported with its id, and the
     * campaign goes on with the next case in a new child. Counts are identical to {@link #run}'s for a crash-free
     * campaign (cases are deterministic).
     */
    public static FuzzReport runIsolated(FuzzTarget target, long cases, long seed, Duration perCaseTimeout,
                                         long batchCases, PrintStream progressOrNull) {
        if (batchCases <= 0) {
            throw new KvArgumentException("batchCases must be > 0, got " + batchCases);
        }
        if (target == null || cases < 0 || perCaseTimeout == null || perCaseTimeout.isNegative()
                || perCaseTimeout.isZero()) {
            throw new KvArgumentException("fuzz needs a target, cases >= 0 and a positive per-case timeout; got "
                    + target + ", " + cases + ", " + perCaseTimeout);
        }
        return IsolatedCampaign.run(target, cases, seed, perCaseTimeout, batchCases, progressOrNull);
    }

    /** Runs cases [from, to) in this JVM; {@code beforeCase} hears each case id before it runs. */
    static FuzzReport runRange(FuzzTarget target, long from, long to, long seed, Duration perCaseTimeout,
                               java.util.function.LongConsumer beforeCase) {
        Path dir;
        try {
            dir = Files.createTempDirectory("kvslab-fuzz-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a temporary directory for fuzz cases", e);
        }
        try {
            return campaign(target, from, to, seed, perCaseTimeout, null, dir, beforeCase);
        } finally {
            deleteTree(dir);
        }
    }

    /** The case generator of a target, its seeds not re-run (for describing a case a crashed child ran). */
    static CaseGenerator generatorWithoutSeedCheck(FuzzTarget target, long seed) {
        Path dir;
        try {
            dir = Files.createTempDirectory("kvslab-fuzz-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a temporary directory for fuzz cases", e);
        }
        try {
            return generator(target, seed, dir, false);
        } finally {
            deleteTree(dir);
        }
    }

    /** The case generator of a target: its seeds parsed; throws if an unmutated seed is not accepted. */
    static CaseGenerator generator(FuzzTarget target, long seed, Path dir) {
        return generator(target, seed, dir, true);
    }

    private static CaseGenerator generator(FuzzTarget target, long seed, Path dir, boolean checkSeeds) {
        List<Structure> seeds = new ArrayList<>();
        List<Structure> tokenizers = new ArrayList<>();
        switch (target) {
            case SNAPSHOT -> seeds.addAll(SnapshotCaseRunner.seeds(dir));
            case GGUF -> {
                List<byte[]> g = SeedModels.ggufSeeds();
                seeds.add(GgufStructure.parse("f32.gguf", g.get(0)));
                seeds.add(GgufStructure.parse("q8_0.gguf", g.get(1)));
            }
            case LLAMA2C -> {
                SeedModels.Geometry g = SeedModels.F32_MODEL;
                seeds.add(Llama2cStructure.checkpoint("shared.bin", SeedModels.llama2c(g, true, 3)));
                seeds.add(Llama2cStructure.checkpoint("separate.bin", SeedModels.llama2c(g, false, 4)));
                Structure tok = Llama2cStructure.tokenizer("tok.bin", SeedModels.llama2cTokenizer(g.vocab()));
                tokenizers.add(tok);
                tokenizers.add(tok);
            }
        }
        for (int i = 0; checkSeeds && i < seeds.size(); i++) {
            Structure s = seeds.get(i);
            FuzzCase unmutated = new FuzzCase(-1, target, s.name(), s.bytes(),
                    tokenizers.isEmpty() ? null : tokenizers.get(i).bytes(), "seed", -1);
            CaseResult r = runCase(unmutated, dir);
            if (r.outcome() != Outcome.ACCEPTED) {
                throw new IllegalStateException("the unmutated seed " + s.name() + " is not accepted: " + r.outcome()
                        + " " + (r.detail() != null ? r.detail() : "") + (r.error() != null ? r.error() : ""), r.error());
            }
        }
        return new CaseGenerator(target, seeds, tokenizers, seed);
    }

    private static FuzzReport campaign(FuzzTarget target, long from, long to, long seed, Duration timeout,
                                       PrintStream progress, Path dir, java.util.function.LongConsumer beforeCase) {
        long start = System.nanoTime();
        CaseGenerator gen = generator(target, seed, dir);
        long[] counts = new long[Outcome.values().length];
        List<FuzzReport.Finding> findings = new ArrayList<>();
        ExecutorService worker = newWorker();
        long cases = to - from;
        long step = Math.max(1, cases / 20);
        try {
            for (long id = from; id < to; id++) {
                beforeCase.accept(id);
                FuzzCase c = gen.next(id);
                Future<CaseResult> f = worker.submit(() -> runCase(c, dir));
                CaseResult r;
                try {
                    r = f.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
                } catch (TimeoutException e) {
                    f.cancel(true);
                    worker.shutdownNow();
                    worker = newWorker();   // the stuck thread is a daemon; it is left behind
                    r = new CaseResult(Outcome.HANG, "no result after " + timeout.toMillis() + " ms", null);
                } catch (ExecutionException e) {
                    r = new CaseResult(Outcome.UNEXPECTED_EXCEPTION, null, e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new KvSlabException("fuzz campaign interrupted at case " + id);
                }
                counts[r.outcome().ordinal()]++;
                if (r.outcome() != Outcome.ACCEPTED && r.outcome() != Outcome.TYPED_REJECTION
                        && findings.size() < MAX_FINDINGS) {
                    findings.add(finding(c, r));
                }
                if (progress != null && ((id + 1 - from) % step == 0 || id + 1 == to)) {
                    progress.printf("fuzz %s: %d/%d cases, %d typed, %d accepted, %d unexpected, %d oracle, %d hangs%n",
                            target.name().toLowerCase(), id + 1 - from, cases, counts[Outcome.TYPED_REJECTION.ordinal()],
                            counts[Outcome.ACCEPTED.ordinal()], counts[Outcome.UNEXPECTED_EXCEPTION.ordinal()],
                            counts[Outcome.ORACLE_VIOLATION.ordinal()], counts[Outcome.HANG.ordinal()]);
                }
            }
        } finally {
            worker.shutdownNow();
        }
        return new FuzzReport(target, seed, cases, counts[Outcome.TYPED_REJECTION.ordinal()],
                counts[Outcome.ACCEPTED.ordinal()], counts[Outcome.UNEXPECTED_EXCEPTION.ordinal()],
                counts[Outcome.ORACLE_VIOLATION.ordinal()], counts[Outcome.HANG.ordinal()], 0,
                (System.nanoTime() - start) / 1_000_000, findings);
    }

    private static ExecutorService newWorker() {
        return Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "kvslab-fuzz-case");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Writes the case's file(s) under names carrying its id, runs it, classifies the outcome and deletes the files.
     * Typed means the library's exception type for the target whose message names the file.
     */
    static CaseResult runCase(FuzzCase c, Path dir) {
        String stem = "case-" + (c.id() < 0 ? "seed" : c.id());
        Path file = dir.resolve(stem + switch (c.target()) {
            case SNAPSHOT -> ".kvs";
            case GGUF -> ".gguf";
            case LLAMA2C -> ".bin";
        });
        Path tokenizer = c.tokenizer() == null ? null : dir.resolve(stem + ".tok");
        try {
            Files.write(file, c.file());
            if (tokenizer != null) {
                Files.write(tokenizer, c.tokenizer());
            }
            try {
                return c.target() == FuzzTarget.SNAPSHOT ? SnapshotCaseRunner.run(c, file)
                        : ModelCaseRunner.run(c, file, tokenizer);
            } catch (KvSlabException e) {
                boolean expectedType = c.target() == FuzzTarget.SNAPSHOT
                        ? e instanceof io.kvslab.snapshot.SnapshotException : e instanceof ModelFormatException;
                String msg = String.valueOf(e.getMessage());
                boolean named = msg.contains(file.getFileName().toString())
                        || (tokenizer != null && msg.contains(tokenizer.getFileName().toString()));
                if (!expectedType || !named) {
                    return new CaseResult(Outcome.ORACLE_VIOLATION, "typed " + e.getClass().getSimpleName()
                            + (expectedType ? "" : " (not the reader's own exception type)")
                            + (named ? "" : " whose message does not name the file") + ": " + msg, e);
                }
                return CaseResult.typed();
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write fuzz case " + c.id(), e);
        } finally {
            try {
                Files.deleteIfExists(file);
                if (tokenizer != null) {
                    Files.deleteIfExists(tokenizer);
                }
            } catch (IOException ignored) {
                // the directory is deleted at the end of the campaign
            }
        }
    }

    static FuzzReport.Finding finding(FuzzCase c, CaseResult r) {
        String error = r.detail() != null ? r.detail()
                : r.error() != null ? r.error().getClass().getName() + ": " + r.error().getMessage() : "";
        String stack = "";
        if (r.error() != null) {
            StringWriter w = new StringWriter();
            r.error().printStackTrace(new PrintWriter(w));
            String[] lines = w.toString().split("\n");
            stack = String.join("\n", java.util.Arrays.copyOf(lines, Math.min(lines.length, 25)));
        }
        return new FuzzReport.Finding(c.id(), r.outcome().name(), c.seed(), c.mutation(), error, stack);
    }

    static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort: a temp directory
                }
            });
        } catch (IOException ignored) {
            // best effort
        }
    }
}
