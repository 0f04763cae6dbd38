package io.kvslab.bench.jmh;

import org.openjdk.jmh.runner.RunnerException;

import java.io.PrintStream;
import java.util.List;

/** The JMH suites of {@code kvslab bench NAME}: one entry per suite, all run through {@link JmhRunner}. */
public enum BenchSuite {
    ATTENTION("attention", "decode attention GB/s of one Llama-3-8B layer vs the machine's read bandwidth",
            "about 1 min; --quick about 30 s (contexts 4k and 32k)"),
    BATCH("batch", "batched decode attention (1/8/32 sequences x 2k/8k) vs a per-sequence loop and the read probe",
            "about 6 min (two rounds); --quick about 2 min (batches 1 and 8)"),
    ALLOC("alloc", "block alloc + free: KVSlab slab allocator vs Netty pooled vs one Arena per block",
            "about 1 min; --quick about 20 s"),
    COMPACTION("compaction", "compaction bytes moved per second vs a block-by-block memcpy baseline",
            "about 1 min; --quick about 20 s"),
    POLICY("policy", "CriticalAdaKV compress vs prefill attention of one Llama-3-8B layer at 4k/8k/32k",
            "several minutes (32k prefill is about a minute per call on 2 cores); --quick: 4k and 8k only"),
    INGEST("ingest", "appendChunk of f32 rows into f16/bf16/f32 stores vs a plain copy of the same bytes",
            "about 2 min (3 rounds); --quick about 20 s (1 round)");

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
    public SuiteReport run(boolean quick, List<String> tokensPerBlock, PrintStream progress) throws RunnerException {
        return switch (this) {
            case ATTENTION -> AttentionBenchRunner.run(quick, tokensPerBlock.toArray(String[]::new), progress);
            case BATCH -> BatchDecodeBenchRunner.run(quick, progress);
            case ALLOC -> AllocBenchRunner.run(quick, progress);
            case COMPACTION -> CompactionBenchRunner.run(quick, progress);
            case POLICY -> PolicyCostBenchRunner.run(quick, progress);
            case INGEST -> IngestBenchRunner.run(quick, progress);
        };
    }
}
