package io.kvslab.bench.fuzz;

import java.util.List;
import java.util.Random;

/**
 * Turns (campaign seed, case id) into a {@link FuzzCase}: picks a seed file and a structure-aware mutation; for
 * snapshots also whether the checksums are recomputed after mutating (70 %, so that the structure checks behind them
 * are reached) or left raw (30 %, which the checksums must catch), and in 8 % of cases a truncation of the file while
 * the restore reads it. Independent of the library under test, so the same cases can be run against an older build.
 */
final class CaseGenerator {
    private final FuzzTarget target;
    private final List<Structure> seeds;
    private final List<Structure> tokenizers;
    private final long campaignSeed;

    /**
     * @param seeds      parsed seed files (snapshots, GGUF files or llama2.c checkpoints)
     * @param tokenizers for {@link FuzzTarget#LLAMA2C}: the tokenizer of each checkpoint seed, same order; else empty
     */
    CaseGenerator(FuzzTarget target, List<Structure> seeds, List<Structure> tokenizers, long campaignSeed) {
        if (seeds.isEmpty() || (target == FuzzTarget.LLAMA2C && tokenizers.size() != seeds.size())) {
            throw new IllegalArgumentException("need seeds (and for LLAMA2C one tokenizer per checkpoint)");
        }
        this.target = target;
        this.seeds = List.copyOf(seeds);
        this.tokenizers = List.copyOf(tokenizers);
        this.campaignSeed = campaignSeed;
    }

    /** The random stream of one case: a 64-bit mix of the campaign seed and the case id. */
    static Random caseRandom(long campaignSeed, long caseId) {
        long z = campaignSeed * 0x9E3779B97F4A7C15L + caseId + 0x632BE59BD9B4E019L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return new Random(z ^ (z >>> 31));
    }

    FuzzCase next(long caseId) {
        Random r = caseRandom(campaignSeed, caseId);
        int which = r.nextInt(seeds.size());
        Structure seed = seeds.get(which);
        return switch (target) {
            case SNAPSHOT -> snapshot(caseId, seed, r);
            case GGUF -> {
                Mutator.Mutant m = Mutator.mutate(seed, r);
                yield new FuzzCase(caseId, target, seed.name(), m.bytes(), null, m.description(), -1);
            }
            case LLAMA2C -> {
                Structure tok = tokenizers.get(which);
                if (r.nextInt(10) < 7) {
                    Mutator.Mutant m = Mutator.mutate(seed, r);
                    yield new FuzzCase(caseId, target, seed.name(), m.bytes(), tok.bytes(), "checkpoint " + m.description(), -1);
                }
                Mutator.Mutant m = Mutator.mutate(tok, r);
                yield new FuzzCase(caseId, target, seed.name(), seed.bytes(), m.bytes(), "tokenizer " + m.description(), -1);
            }
        };
    }

    private FuzzCase snapshot(long caseId, Structure seed, Random r) {
        if (r.nextInt(100) < 8) {
            // a valid file (or one valid-looking mutation of it) cut while the restore stages its blocks
            byte[] b = seed.bytes().clone();
            String what = "intact";
            if (r.nextBoolean()) {
                Mutator.Mutant m = Mutator.mutate(seed, r);
                b = m.bytes();
                SnapshotStructure.recomputeCrcs(b);
                what = m.description() + ", crcs recomputed";
            }
            long cut = switch (r.nextInt(4)) {
                case 0 -> 0;
                case 1 -> SnapshotStructure.HEADER_BYTES + r.nextInt(64);
                case 2 -> Math.max(0, b.length - 1 - r.nextInt(Math.max(1, b.length / 2)));
                default -> r.nextInt(Math.max(1, b.length));
            };
            return new FuzzCase(caseId, target, seed.name(), b, null, what + "; cut to " + cut + " during restore", cut);
        }
        Mutator.Mutant m = Mutator.mutate(seed, r);
        byte[] b = m.bytes();
        boolean fix = r.nextInt(10) < 7;
        if (fix) {
            SnapshotStructure.recomputeCrcs(b);
        }
        return new FuzzCase(caseId, target, seed.name(), b, null, m.description() + (fix ? ", crcs recomputed" : ", raw"), -1);
    }
}
