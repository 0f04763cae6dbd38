package io.kvslab.bench.cli;

import io.kvslab.bench.cli.types.KvDtypesConverter;
import io.kvslab.bench.model.Generation;
import io.kvslab.bench.model.Generator;
import io.kvslab.bench.model.KvBackend;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.Sampler;
import io.kvslab.bench.model.Session;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code kvslab generate}: llama2.c's {@code run} on the KVSlab store; prints the text, tokens/s on stderr. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generate text with a Llama model (llama2.c .bin + tokenizer, or GGUF) on the KV store; the "
                + "text goes to stdout, tokens/s to stderr (under a second for stories260K).")
final class GenerateCommand implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Option(names = "--model", paramLabel = "FILE",
            description = "required: llama2.c checkpoint (.bin) or GGUF file (llama architecture; F32/F16/BF16/Q8_0)")
    private Path model;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "llama2.c tokenizer (e.g. tok512.bin); required for .bin, optional for GGUF")
    private Path tokenizer;

    @Option(names = "--prompt", paramLabel = "TEXT", defaultValue = "",
            description = "prompt (default: empty, the model starts from BOS)")
    private String prompt;

    @Option(names = "--steps", paramLabel = "N", defaultValue = "256",
            description = "positions to run, prompt included; 0 = the model's context (default ${DEFAULT-VALUE})")
    private int steps;

    @Option(names = "--temperature", paramLabel = "X", defaultValue = "1.0",
            description = "0 = greedy (default ${DEFAULT-VALUE})")
    private double temperature;

    @Option(names = "--topp", paramLabel = "P", defaultValue = "0.9",
            description = "nucleus sampling threshold in (0,1); other values sample the whole distribution "
                    + "(default ${DEFAULT-VALUE})")
    private double topp;

    @Option(names = "--seed", paramLabel = "N", description = "sampler seed, > 0 (default: the current time, "
            + "printed on stderr)")
    private Long seed;

    @Option(names = "--kv", paramLabel = "NAME", defaultValue = "store",
            description = "store (KV store + native kernel, default), store-java, java (llama2.c reference)")
    private String kv;

    @Option(names = "--kv-dtype", paramLabel = "TYPE", converter = KvDtypesConverter.class, defaultValue = "f32",
            description = "element type of stored K/V rows: f32 (default), f16, bf16, q8_0, q4_0 for both, or "
                    + "K/V for each side (e.g. q8_0/q4_0, as llama.cpp's --cache-type-k/-v; k=q8_0,v=q4_0 also works)")
    private KvDtypes dtype;

    @Option(names = "--matmul", paramLabel = "NAME", defaultValue = "openblas",
            description = "openblas (default) or java (llama2.c's loop order); allowed: ${COMPLETION-CANDIDATES}")
    private MatMul matMul;

    @Option(names = "--chunk", paramLabel = "N", defaultValue = "" + Session.DEFAULT_CHUNK,
            description = "prefill chunk in tokens (default ${DEFAULT-VALUE})")
    private int chunk;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "1",
            description = "attention kernel threads (default 1: a small model's attention is not worth splitting)")
    private int threads;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "0",
            description = "run the same generation N times first, unprinted and untimed, so the JIT has compiled "
                    + "the hot paths before the measured run (default 0)")
    private int warmup;

    @Option(names = "--ids", description = "print the token ids after the text")
    private boolean printIds;

    @Override
    public Integer call() {
        if (model == null) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--model FILE is required");
        }
        Check.range(spec, "--steps", steps, 0, Integer.MAX_VALUE);
        Check.range(spec, "--temperature", temperature, 0, 1e6);
        Check.range(spec, "--chunk", chunk, 1, 4096);
        Check.range(spec, "--threads", threads, 1, 64);
        Check.range(spec, "--warmup", warmup, 0, 1000);
        KvBackend backend = KvBackend.of(Check.choice(spec, "--kv", kv, List.of("store", "store-java", "java")));
        long s = seed != null ? Check.range(spec, "--seed", seed, 1, Long.MAX_VALUE) : 0;
        PrintWriter err = spec.commandLine().getErr();
        LoadedModel m = ModelFiles.load(spec, model, tokenizer);
        String tooWide = m.model().config().rowsProblem(chunk);
        if (tooWide != null) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--chunk " + chunk + ": " + tooWide);
        }
        if (s == 0) {
            s = System.currentTimeMillis() / 1000;
            if (temperature != 0) {
                err.println("seed: " + s);
            }
        }
        int vocab = m.model().config().vocabSize();
        for (int i = 0; i < warmup; i++) {
            try (Session session = new Session(m.model(), backend.open(m.model().config(), dtype.key(), dtype.value(), threads), matMul,
                    chunk)) {
                Generator.generate(session, m.tokenizer(), prompt, steps, sampler(vocab, s), null);
            }
        }
        // Token pieces are raw bytes (UTF-8 split across pieces): write them to the byte stream, not the writer.
        PrintStream out = System.out;
        PrintWriter outWriter = spec.commandLine().getOut();
        outWriter.flush();
        Generation g;
        try (Session session = new Session(m.model(), backend.open(m.model().config(), dtype.key(), dtype.value(), threads), matMul,
                chunk)) {
            g = Generator.generate(session, m.tokenizer(), prompt, steps, sampler(vocab, s), p -> {
                out.write(p, 0, p.length);
                out.flush();
            });
        }
        out.println();
        if (printIds) {
            StringBuilder sb = new StringBuilder();
            for (int id : g.ids()) {
                sb.append(sb.isEmpty() ? "" : " ").append(id);
            }
            out.println(sb);
        }
        out.flush();
        err.printf(Locale.ROOT, "achieved tok/s: %.1f (%d positions in %.1f ms: prompt %d tokens in %.1f ms,"
                        + " then %.1f tok/s; kv=%s %s, matmul=%s%s)%n",
                g.tokensPerSecond(), g.positions(), (g.prefillNanos() + g.decodeNanos()) / 1e6,
                Math.min(g.promptTokens().length, g.positions()), g.prefillNanos() / 1e6, g.decodeTokensPerSecond(),
                backend.label(), dtype.label(), matMul.name().toLowerCase(Locale.ROOT),
                warmup > 0 ? ", after " + warmup + " warm-up runs" : "");
        return 0;
    }

    private Sampler sampler(int vocab, long s) {
        return new Sampler(vocab, (float) temperature, (float) topp, s);
    }
}
