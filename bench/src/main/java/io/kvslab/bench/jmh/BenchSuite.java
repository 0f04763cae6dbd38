package io.kvslab.bench.jmh;

import org.openjdk.jmh.runner.RunnerException;

import java.io.PrintStream;
import java.util.List;

/** The JMH suites of {@code kvslab bench NAME}: one entry per suite, all run through {@link JmhRunner}. */
public enum BenchSuite {
    ATTENTION("attention", "decode attention GB/s of one Llama-3-8B layer vs the machine's read bandwidth",
            "default 32k tokens, f16, 1 and 2 threads: about 1 min; --full: 4k/32k/128k x f32/f16/q8_0/q4_0"),
    BATCH("batch", "batched decode attention (sequences x 2k/8k tokens) vs a per-sequence loop and the read probe",
            "default batches 1 and 8, one round: about 1 min; --full: batches 1/8/32, two rounds"),
    ALLOC("alloc", "block alloc + free: KVSlab slab allocator vs Netty pooled vs one Arena per block",
            "about 1 min; --full: 3 x 1 s warm-up, 5 x 1 s measurement"),
    COMPACTION("compaction", "compaction bytes moved per second vs a block-by-block memcpy baseline",
            "about 40 s"),
    POLICY("policy", "CriticalAdaKV compress vs prefill attention and vs the full prefill of one Llama-3-8B layer",
            "default 4k tokens: about 1 min; --full: 4k/8k/32k, 15 min or more (32k prefill is about a "
                    + "minute a call)"),
    INGEST("ingest", "appendChunk of f32 rows into f16/bf16/f32 stores vs a plain copy of the same bytes",
            "default one round: about 45 s; --full: 3 rounds"),
    PREFILL("prefill", "causal prefill attention GFLOP/s of one Llama-3-8B layer vs a bare sgemm of the same run",
            "default 4k tokens: about 1 min; --full: also 32k (two calls of several minutes each)");

    private final String label;
    private final String summary;
    private final String duration;

    BenchSuite(String label, String summary, String duration) {
        this.label = label;
        this.summary = summary;
        this.duration = duration;
    }

    public String label() {
        return label;
    }

    public String summary() {
        return summary;
    }

    /** How long a run takes on the 2-core development machine. */
    public String duration() {
        return duration;
    }

    /** Runs the suite; {@code tokensPerBlock} applies to {@link #ATTENTION} only. */
    public SuiteReport run(RunSize size, List<String> tokensPerBlock, PrintStream progress) throws RunnerException {
        return switch (this) {
            case ATTENTION -> AttentionBenchRunner.run(size, tokensPerBlock.toArray(String[]::new), progress);
            case BATCH -> BatchDecodeBenchRunner.run(size, progress);
            case ALLOC -> AllocBenchRunner.run(size, progress);
            case COMPACTION -> CompactionBenchRunner.run(size, progress);
            case POLICY -> PolicyCostBenchRunner.run(size, progress);
            case INGEST -> IngestBenchRunner.run(size, progress);
            case PREFILL -> PrefillBenchRunner.run(size, progress);
        };
    }
}
