package io.kvslab.bench.cli;

import io.kvslab.KvSlabException;
import io.kvslab.bench.model.Generation;
import io.kvslab.bench.model.Generator;
import io.kvslab.bench.model.KvBackend;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.MatMul;
import io.kvslab.bench.model.Sampler;
import io.kvslab.bench.model.Session;
import io.kvslab.DType;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/** {@code kvslab generate}: llama2.c's {@code run} on the KVSlab store; prints the text, tokens/s on stderr. */
final class GenerateCommand implements Command {
    @Override
    public String summary() {
        return "generate text with a Llama model (llama2.c .bin + tokenizer, or GGUF) on the KV store";
    }

    @Override
    public String usage() {
        return """
                usage: kvslab generate --model FILE [--tokenizer FILE] [options]
                  --model FILE        llama2.c checkpoint (.bin) or GGUF file (llama architecture; F32/F16/BF16/Q8_0)
                  --tokenizer FILE    llama2.c tokenizer (e.g. tok512.bin); required for .bin, optional for GGUF
                  --prompt TEXT       prompt (default: empty, the model starts from BOS)
                  --steps N           positions to run, prompt included; 0 = the model's context (default 256)
                  --temperature X     0 = greedy (default 1.0)
                  --topp P            nucleus sampling threshold in (0,1); other values sample the whole distribution (default 0.9)
                  --seed N            sampler seed, > 0 (default: the current time, printed on stderr)
                  --kv NAME           store (KV store + native kernel, default), store-java, java (llama2.c reference)
                  --kv-dtype T        element type of stored K/V rows: f32 (default), f16, bf16
                  --matmul NAME       openblas (default) or java (llama2.c's loop order)
                  --chunk N           prefill chunk in tokens (default 64)
                  --threads N         attention kernel threads (default 1: a small model's attention is not worth splitting)
                  --warmup N          run the same generation N times first, unprinted and untimed, so the JIT has
                                      compiled the hot paths before the measured run (default 0)
                  --ids               print the token ids after the text""";
    }

    @Override
    public int run(String[] argv) throws UsageException {
        Args a = new Args(argv, Set.of("ids", "help"));
        if (a.flag("help")) {
            System.out.println(usage());
            return 0;
        }
        Path model = Path.of(a.required("model"));
        String tok = a.string("tokenizer", null);
        String prompt = a.string("prompt", "");
        int steps = a.intValue("steps", 256, 0, Integer.MAX_VALUE);
        float temperature = (float) a.doubleValue("temperature", 1.0, 0.0, 1e6);
        float topp = (float) a.doubleValue("topp", 0.9, -1e6, 1e6);
        long seed = a.longValue("seed", 0, 1, Long.MAX_VALUE);
        KvBackend kv = parse(a.string("kv", "store"), "kv", KvBackend::of);
        DType dtype = parse(a.string("kv-dtype", "f32"), "kv-dtype", s -> DType.valueOf(s.toUpperCase(Locale.ROOT)));
        MatMul matMul = parse(a.string("matmul", "openblas"), "matmul", s -> MatMul.valueOf(s.toUpperCase(Locale.ROOT)));
        int chunk = a.intValue("chunk", Session.DEFAULT_CHUNK, 1, 4096);
        int threads = a.intValue("threads", 1, 1, 64);
        int warmup = a.intValue("warmup", 0, 0, 1000);
        boolean printIds = a.flag("ids");
        a.finish();
        if (seed == 0) {
            seed = System.currentTimeMillis() / 1000;
            if (temperature != 0) {
                System.err.println("seed: " + seed);
            }
        }
        PrintStream out = System.out;
        try {
            LoadedModel m = LoadedModel.load(model, tok == null ? null : Path.of(tok));
            int vocab = m.model().config().vocabSize();
            for (int i = 0; i < warmup; i++) {
                try (Session s = new Session(m.model(), kv.open(m.model().config(), dtype, threads), matMul, chunk)) {
                    Generator.generate(s, m.tokenizer(), prompt, steps, new Sampler(vocab, temperature, topp, seed), null);
                }
            }
            Sampler sampler = new Sampler(vocab, temperature, topp, seed);
            Generation g;
            try (Session s = new Session(m.model(), kv.open(m.model().config(), dtype, threads), matMul, chunk)) {
                g = Generator.generate(s, m.tokenizer(), prompt, steps, sampler, p -> {
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
            System.err.printf(Locale.ROOT, "achieved tok/s: %.1f (%d positions in %.1f ms: prompt %d tokens in %.1f ms,"
                            + " then %.1f tok/s; kv=%s %s, matmul=%s%s)%n",
                    g.tokensPerSecond(), g.positions(), (g.prefillNanos() + g.decodeNanos()) / 1e6,
                    Math.min(g.promptTokens().length, g.positions()), g.prefillNanos() / 1e6, g.decodeTokensPerSecond(),
                    kv.label(), dtype.name().toLowerCase(Locale.ROOT), matMul.name().toLowerCase(Locale.ROOT),
                    warmup > 0 ? ", after " + warmup + " warm-up runs" : "");
            return 0;
        } catch (KvSlabException | IllegalArgumentException e) {
            System.err.println("kvslab generate: " + e.getMessage());
            return 1;
        }
    }

    private interface Parser<T> {
        T parse(String s);
    }

    private static <T> T parse(String value, String option, Parser<T> p) throws UsageException {
        try {
            return p.parse(value);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--" + option + " does not accept '" + value + "': " + e.getMessage());
        }
    }
}
