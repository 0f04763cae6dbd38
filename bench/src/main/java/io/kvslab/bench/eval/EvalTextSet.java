package io.kvslab.bench.eval;

import io.kvslab.bench.report.Json;

import io.kvslab.bench.model.Generation;
import io.kvslab.bench.model.Generator;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.Sampler;
import io.kvslab.bench.model.Session;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A reproducible set of evaluation texts: stories the model itself samples from BOS (empty prompt) with fixed seeds,
 * on the reference path (Java arithmetic identical to llama2.c, so the same on every machine). The set shipped as
 * the resource {@value #RESOURCE} records its seeds, settings and the command that wrote it, and a test regenerates
 * it to prove it is reproducible.
 *
 * @param model       the model file name the stories come from
 * @param temperature sampling temperature
 * @param topp        nucleus threshold
 * @param steps       positions per story at most (a sampled BOS ends a story earlier)
 * @param command     how the set was produced
 * @param stories     the texts
 */
public record EvalTextSet(String model, float temperature, float topp, int steps, String command, List<Story> stories) {
    /**
     * The set sampled from stories260K: 16 stories, seeds 1..16, temperature 1, top-p 0.9, at most 511 positions so
     * that BOS + ids fits the 512-token context.
     */
    public static final String RESOURCE = "/eval/stories260K-t1-p0.9.json";

    /**
     * One text: {@code ids} as llama2.c emits them (BOS excluded); the model reads {@link #tokens(int)}.
     *
     * @param seed the sampler seed that produced it
     */
    public record Story(long seed, int[] ids, String text) {
        /** The token sequence to feed a model: BOS, then the ids. */
        public int[] tokens(int bos) {
            int[] t = new int[ids.length + 1];
            t[0] = bos;
            System.arraycopy(ids, 0, t, 1, ids.length);
            return t;
        }
    }

    public EvalTextSet {
        stories = List.copyOf(stories);
    }

    /** How the report names a story: "seed S" for a sampled set, "line L" for a user's file ({@link TextFile}). */
    public String origin(Story story) {
        return (Float.isNaN(temperature) ? "line " : "seed ") + story.seed();
    }

    /** Samples one story per seed on the reference path. */
    public static EvalTextSet sample(LoadedModel m, long[] seeds, float temperature, float topp, int steps, String command) {
        List<Story> out = new ArrayList<>();
        for (long seed : seeds) {
            try (Session s = Session.reference(m.model())) {
                Generation g = Generator.generate(s, m.tokenizer(), "", steps,
                        new Sampler(m.model().config().vocabSize(), temperature, topp, seed), null);
                out.add(new Story(seed, g.ids(), g.text()));
            }
        }
        return new EvalTextSet(m.model().name(), temperature, topp, steps, command, out);
    }

    /** The set shipped with the bench module ({@value #RESOURCE}). */
    public static EvalTextSet load() {
        try (InputStream in = EvalTextSet.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("resource " + RESOURCE + " is missing from the classpath");
            }
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @SuppressWarnings("unchecked")
    public static EvalTextSet parse(String json) {
        Map<String, Object> m = (Map<String, Object>) Json.parse(json);
        List<Story> stories = new ArrayList<>();
        for (Object o : (List<Object>) m.get("stories")) {
            Map<String, Object> s = (Map<String, Object>) o;
            int[] ids = ((List<Object>) s.get("ids")).stream().mapToInt(x -> ((Long) x).intValue()).toArray();
            stories.add(new Story((Long) s.get("seed"), ids, (String) s.get("text")));
        }
        return new EvalTextSet((String) m.get("model"), ((Number) m.get("temperature")).floatValue(),
                ((Number) m.get("topp")).floatValue(), ((Long) m.get("steps")).intValue(), (String) m.get("command"), stories);
    }

    public String toJson() {
        StringBuilder sb = new StringBuilder("{\n");
        sb.append(" \"model\": ").append(Json.quote(model)).append(",\n");
        sb.append(" \"prompt\": \"\",\n");
        sb.append(" \"temperature\": ").append(temperature).append(",\n");
        sb.append(" \"topp\": ").append(topp).append(",\n");
        sb.append(" \"steps\": ").append(steps).append(",\n");
        sb.append(" \"command\": ").append(Json.quote(command)).append(",\n");
        sb.append(" \"stories\": [\n");
        for (int i = 0; i < stories.size(); i++) {
            Story s = stories.get(i);
            sb.append("  {\"seed\": ").append(s.seed()).append(", \"ids\": [");
            for (int j = 0; j < s.ids().length; j++) {
                sb.append(j == 0 ? "" : ",").append(s.ids()[j]);
            }
            sb.append("],\n   \"text\": ").append(Json.quote(s.text())).append('}');
            sb.append(i + 1 < stories.size() ? ",\n" : "\n");
        }
        return sb.append(" ]\n}\n").toString();
    }

    /**
     * Writes a set: {@code EvalTextSet --model M [--tokenizer T] --seeds FIRST..LAST [--steps N] [--temperature X]
     * [--topp P] --out FILE}.
     */
    public static void main(String[] args) throws IOException {
        Map<String, String> o = new java.util.HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("expected --option value pairs, got " + args[i]);
            }
            o.put(args[i].substring(2), args[i + 1]);
        }
        String tok = o.get("tokenizer");
        LoadedModel m = LoadedModel.load(Path.of(o.get("model")), tok == null ? null : Path.of(tok));
        String[] range = o.getOrDefault("seeds", "1..16").split("\\.\\.");
        long first = Long.parseLong(range[0]);
        long last = Long.parseLong(range[1]);
        long[] seeds = new long[(int) (last - first + 1)];
        for (int i = 0; i < seeds.length; i++) {
            seeds[i] = first + i;
        }
        StringBuilder cmd = new StringBuilder("java -cp bench/target/kvslab.jar " + EvalTextSet.class.getName());
        for (String a : args) {
            cmd.append(' ').append(a);
        }
        EvalTextSet set = sample(m, seeds, Float.parseFloat(o.getOrDefault("temperature", "1.0")),
                Float.parseFloat(o.getOrDefault("topp", "0.9")), Integer.parseInt(o.getOrDefault("steps", "511")),
                cmd.toString());
        Files.writeString(Path.of(o.get("out")), set.toJson());
    }
}
