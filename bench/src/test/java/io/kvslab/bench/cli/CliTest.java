package io.kvslab.bench.cli;

import io.kvslab.bench.cli.types.KvDtypesConverter;
import io.kvslab.bench.cli.types.QueryPrecisionConverter;
import io.kvslab.bench.cli.types.DTypeConverter;
import io.kvslab.DType;
import io.kvslab.bench.model.KvDtypes;
import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.Sequence;
import io.kvslab.bench.jmh.BenchSuite;
import io.kvslab.bench.report.Json;
import io.kvslab.snapshot.Snapshots;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The kvslab command line run in-process through picocli, with stdout and stderr captured. */
class CliTest {
    private record Run(int code, String out, String err) {
        String all() {
            return "exit " + code + "\nstdout:\n" + out + "\nstderr:\n" + err;
        }
    }

    private static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.execute(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Run(code, out.toString(), err.toString());
    }

    /** Every command and subcommand, as typed. */
    static List<String> commands() {
        List<String> all = new ArrayList<>(List.of("", "demo", "generate", "eval", "eval fidelity", "pod",
                "pod calibrate", "bench", "footprint", "stress", "stress long", "stress churn", "stress all",
                "snapshot", "snapshot inspect", "snapshot verify", "fuzz", "serve", "loadtest", "test", "build",
                "bench redis", "bench serve-sim", "bench decode-vs-probe", "generate-completion"));
        for (BenchSuite s : BenchSuite.values()) {
            all.add("bench " + s.label());
        }
        return all;
    }

    @ParameterizedTest
    @MethodSource("commands")
    void everyCommandHasHelpThatExitsZero(String command) {
        List<String> args = new ArrayList<>(command.isEmpty() ? List.of() : List.of(command.split(" ")));
        args.add("--help");
        // picocli reports a malformed help text (an unescaped % in a description) on System.err itself
        java.io.PrintStream stderr = System.err;
        java.io.ByteArrayOutputStream direct = new java.io.ByteArrayOutputStream();
        Run r;
        System.setErr(new java.io.PrintStream(direct, true));
        try {
            r = run(args.toArray(String[]::new));
        } finally {
            System.setErr(stderr);
        }
        assertEquals("", direct.toString(), "printed on System.err by " + command + " --help");
        assertEquals(0, r.code(), r.all());
        assertTrue(r.out().contains("Usage: kvslab" + (command.isEmpty() ? "" : " " + command)), r.all());
        assertTrue(r.err().isEmpty(), r.all());
    }

    @Test
    void helpListsEveryCommandIncludingTheLauncherOnes() {
        Run r = run("help");
        assertEquals(0, r.code(), r.all());
        for (String c : List.of("demo", "generate", "eval", "pod", "bench", "footprint", "stress", "snapshot", "fuzz",
                "serve", "loadtest",
                "test", "build")) {
            assertTrue(r.out().contains("\n  " + c + " "), c + " missing in\n" + r.out());
        }
    }

    @Test
    @SuppressWarnings("unchecked")
    void fuzzRunsASmallCleanCampaignAndRejectsAnUnknownTarget() {
        Run r = run("fuzz", "snapshot", "--cases", "3", "--seed", "7", "--json");
        assertEquals(0, r.code(), r.all());
        Map<String, Object> j = (Map<String, Object>) Json.parse(r.out());
        assertEquals(3L, j.get("cases"));
        Run bad = run("fuzz", "pdf");
        assertEquals(2, bad.code(), bad.all());
        assertTrue(bad.err().contains("SNAPSHOT") && bad.err().contains("LLAMA2C"), bad.all());
    }

    @Test
    void bashCompletionKnowsTheCommandsAndOptions() {
        Run r = run("generate-completion");
        assertEquals(0, r.code(), r.all());
        assertTrue(r.out().contains("complete -F") && r.out().contains("snapshot")
                && r.out().contains("--tokens-per-block"), r.all());
    }

    @Test
    void aNamedCommandIsTheOnlyOneBuiltAndTheFullListStaysForHelpAndMistakes() {
        PrintWriter sink = new PrintWriter(new StringWriter());
        assertEquals(List.of("generate"), List.copyOf(Main.commandLine(sink, sink, "-v", "generate", "--steps", "2")
                .getSubcommands().keySet()));
        int all = Main.commandLine(sink, sink).getSubcommands().size();
        assertTrue(all >= 15, "commands: " + all);
        for (String[] args : List.of(new String[] {"help", "generate"}, new String[] {"generat"},
                new String[] {"--help"}, new String[] {"generate-completion"})) {
            assertEquals(all, Main.commandLine(sink, sink, args).getSubcommands().size(), String.join(" ", args));
        }
        Run r = run("--help");
        assertEquals(0, r.code(), r.all());
        for (String c : List.of("demo", "generate", "bench", "snapshot", "serve", "test", "help")) {
            assertTrue(r.out().contains("\n  " + c + " "), c + " missing in\n" + r.out());
        }
        Run h = run("help", "snapshot");
        assertEquals(0, h.code(), h.all());
        assertTrue(h.out().contains("Usage: kvslab snapshot"), h.all());
    }

    @Test
    void everySuiteHasQuickAndFullAndSaysHowLongItsDefaultTakes() {
        for (BenchSuite s : BenchSuite.values()) {
            Run h = run("bench", s.label(), "--help");
            assertTrue(h.out().contains("--quick") && h.out().contains("--full"), h.all());
            assertTrue(h.out().matches("(?s).*default.*about \\d+ (s|min).*|(?s).*\\(JMH; about \\d+ (s|min).*"),
                    h.all());
            Run both = run("bench", s.label(), "--quick", "--full");
            assertEquals(2, both.code(), both.all());
            assertEquals("kvslab bench " + s.label() + ": --quick and --full exclude each other\n", both.err());
        }
    }

    @Test
    void noCommandPrintsUsageAndExitsTwo() {
        Run r = run();
        assertEquals(2, r.code());
        assertTrue(r.err().contains("Usage: kvslab"), r.all());
    }

    @Test
    void versionAloneBuildsNoCommandAndWithHelpTheWholeList() {
        PrintWriter sink = new PrintWriter(new StringWriter());
        assertEquals(0, Main.commandLine(sink, sink, "--version").getSubcommands().size());
        assertEquals(0, Main.commandLine(sink, sink, "-V").getSubcommands().size());
        int all = Main.commandLine(sink, sink).getSubcommands().size();
        assertEquals(all, Main.commandLine(sink, sink, "--version", "--help").getSubcommands().size());
        assertEquals(List.of("generate"), List.copyOf(Main.commandLine(sink, sink, "--version", "generate")
                .getSubcommands().keySet()));
        Run v = run("-V");
        assertEquals(0, v.code(), v.all());
        assertTrue(v.out().startsWith("kvslab ") && v.out().contains("\nJava "), v.all());
    }

    @Test
    void versionPrintsTheProjectVersion() throws Exception {
        Run r = run("--version");
        assertEquals(0, r.code(), r.all());
        // the same version Maven resolved for this module (the filtered resource is not read back by the test)
        String pom = Files.readString(Path.of("pom.xml"));
        String version = pom.substring(pom.indexOf("<version>") + 9, pom.indexOf("</version>"));
        assertTrue(r.out().startsWith("kvslab " + version + "\n"), r.all());
    }

    @Test
    void misspelledOptionIsOneLineWithASuggestion() {
        Run r = run("bench", "attention", "--quik");
        assertEquals(2, r.code(), r.all());
        assertEquals("kvslab bench attention: unknown option --quik (did you mean --quick?)\n", r.err());
        Run g = run("generate", "--modle", "x");
        assertEquals(2, g.code(), g.all());
        assertTrue(g.err().contains("unknown option --modle (did you mean --model?)"), g.all());
        assertEquals(1, g.err().lines().count(), g.all());
    }

    /** 16M tokens of f32 over 32 layers are 4 TiB of KV: refused before any is allocated, with what fits. */
    @Test
    void demoRefusesAContextLargerThanTheMachine() {
        Run r = run("demo", "--tokens", "16m", "--dtype", "f32");
        assertEquals(2, r.code(), r.all());
        assertTrue(r.err().contains("needs 4096.0 GiB of KV, more than 80% of this machine's"), r.all());
        assertTrue(r.err().contains("tokens fit"), r.all());
        assertEquals(1, r.err().lines().count(), r.all());
    }

    @Test
    void unknownCommandNamesTheCommands() {
        Run r = run("stress", "sideways");
        assertEquals(2, r.code());
        assertEquals("kvslab stress: unknown command sideways; commands: long, churn, all\n", r.err());
        Run s = run("snapshott");
        assertEquals(2, s.code());
        assertTrue(s.err().contains("did you mean snapshot"), s.all());
    }

    @Test
    void badEnumValuesListWhatIsAllowed() {
        Run d = run("footprint", "--dtypes", "f8");
        assertEquals(2, d.code(), d.all());
        assertTrue(d.err().contains("'f8'") && d.err().contains("f32, f16, bf16"), d.all());
        Run p = run("eval", "fidelity", "--policies", "snapkvv");
        assertEquals(2, p.code(), p.all());
        assertTrue(p.err().contains("'snapkvv'") && p.err().contains("snapkv, adakv"), p.all());
        assertFalse(p.err().contains("Exception"), p.all());
        Run m = run("generate", "--model", "x", "--matmul", "cuda");
        assertEquals(2, m.code(), m.all());
        assertTrue(m.err().contains("JAVA") && m.err().contains("OPENBLAS"), m.all());
        for (Run r : List.of(d, p, m)) {
            assertEquals(1, r.err().lines().count(), r.all());
        }
    }

    @Test
    void dtypeSpellingsOfTheDocsAllMapToTheSameType() {
        for (String s : List.of("f16", "F16", "fp16", "FP16", "float16", "half")) {
            assertEquals(DType.F16, DTypeConverter.parse(s), s);
        }
        for (String s : List.of("bf16", "BF16", "bfloat16")) {
            assertEquals(DType.BF16, DTypeConverter.parse(s), s);
        }
        for (String s : List.of("f32", "fp32", "FLOAT32")) {
            assertEquals(DType.F32, DTypeConverter.parse(s), s);
        }
    }

    @Test
    void kvDtypeTakesOneTypeOrOnePerSide() {
        assertEquals(new KvDtypes(DType.Q8_0, DType.Q8_0), KvDtypesConverter.parse("q8_0"));
        assertEquals(new KvDtypes(DType.Q8_0, DType.Q4_0), KvDtypesConverter.parse("q8_0/q4_0"));
        assertEquals(new KvDtypes(DType.F16, DType.Q4_0), KvDtypesConverter.parse(" FP16/q4 "));
        assertEquals(new KvDtypes(DType.Q8_0, DType.Q4_0), KvDtypesConverter.parse("k=q8_0,v=q4_0"));
        assertEquals(new KvDtypes(DType.Q4_0, DType.F16), KvDtypesConverter.parse("v=fp16, K=q4"));
        assertEquals("q8_0/q4_0", KvDtypesConverter.parse("k=q8,v=q4").label());
        assertEquals("bf16/f32", KvDtypesConverter.parse("bfloat16/float32").label());
        assertEquals("f16", KvDtypesConverter.parse("f16").label());
        assertEquals("f16", KvDtypesConverter.parse("f16/half").label()); // the same type twice is one type
        for (String bad : List.of("k=q8_0", "k=q8_0,k=f16", "x=f16,v=f16", "k=q9,v=f16", "q8_0,q4_0", "q8_0/",
                "/q4_0", "q8_0/q4_0/f16", "q8_0/q9", "fp8", "")) {
            picocli.CommandLine.TypeConversionException e = assertThrows(
                    picocli.CommandLine.TypeConversionException.class, () -> KvDtypesConverter.parse(bad), bad);
            assertTrue(e.getMessage().contains("allowed: " + KvDtypesConverter.ALLOWED), e.getMessage());
        }
    }

    @Test
    void queryPrecisionTakesExactQ80OrInt8() {
        assertEquals(io.kvslab.Attention.QueryPrecision.EXACT, QueryPrecisionConverter.parse("exact"));
        assertEquals(io.kvslab.Attention.QueryPrecision.Q8_0, QueryPrecisionConverter.parse(" Q8_0 "));
        assertEquals(io.kvslab.Attention.QueryPrecision.INT8, QueryPrecisionConverter.parse("int8"));
        for (String bad : List.of("q8", "q4_0", "f32", "int4", "")) {
            picocli.CommandLine.TypeConversionException e = assertThrows(
                    picocli.CommandLine.TypeConversionException.class, () -> QueryPrecisionConverter.parse(bad), bad);
            assertTrue(e.getMessage().contains("allowed: " + QueryPrecisionConverter.ALLOWED), e.getMessage());
        }
        Run bad = run("eval", "fidelity", "--query-precision", "int4");
        assertEquals(2, bad.code(), bad.all());
        assertTrue(bad.err().contains("'int4' is not a query precision; allowed: " + QueryPrecisionConverter.ALLOWED),
                bad.all());
        Run java = run("eval", "fidelity", "--query-precision", "int8", "--attention", "java");
        assertEquals(2, java.code(), java.all());
        assertTrue(java.err().contains("--query-precision int8 needs --attention native"), java.all());
    }

    @Test
    void missingFilesAreNamed(@TempDir Path dir) {
        Path missing = dir.resolve("no-such-model.bin");
        Run g = run("generate", "--model", missing.toString());
        assertEquals(2, g.code(), g.all());
        assertEquals("kvslab generate: --model: no such file: " + missing + "\n", g.err());
        Run s = run("snapshot", "inspect", missing.toString());
        assertEquals(2, s.code(), s.all());
        assertTrue(s.err().contains("no such file: " + missing), s.all());
    }

    /** A prompt far past the context is refused from its length (exit 1, the context's failure) before encoding. */
    @Test
    void generateRefusesAPromptTooLongForTheContext() {
        String huge = "Lily and Ben went to the park. ".repeat(33_000);
        Run r = run("generate", "--model", io.kvslab.bench.model.SharedModels.binFile().toString(), "--tokenizer",
                io.kvslab.bench.model.SharedModels.tokenizerFile().toString(), "--kv", "java", "--matmul", "java",
                "--seed", "1", "--prompt", huge);
        assertEquals(1, r.code(), r.all().substring(0, Math.min(2000, r.all().length())));
        assertTrue(r.err().startsWith("kvslab generate: the prompt of 1023000 bytes (UTF-8) cannot fit"), r.err());
        assertTrue(r.err().contains("context length is 512 tokens") && r.err().contains("at most 3584 bytes"), r.err());
        assertEquals(1, r.err().lines().count(), r.err());
    }

    @Test
    void aFileThatIsNoModelIsSaidToBeNoModel(@TempDir Path dir) throws Exception {
        Path readme = dir.resolve("README.md");
        Files.writeString(readme, "# KVSlab\n\nAn off-heap KV cache for LLM inference, in Java.\n");
        Run r = run("generate", "--model", readme.toString());
        assertEquals(2, r.code(), r.all());
        assertTrue(r.err().contains("not a llama2.c checkpoint or GGUF file"), r.all());
        assertEquals(1, r.err().lines().count(), r.all());
    }

    @Test
    void outputLocationsAreCheckedBeforeTheWork(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("a-file");
        Files.writeString(file, "x");
        // a directory below a regular file cannot exist: rejected at once, before the model is even loaded
        Run r = run("eval", "fidelity", "--out", file.resolve("sub").toString());
        assertEquals(2, r.code(), r.all());
        assertTrue(r.err().contains("--out: cannot write to directory"), r.all());
        Run p = run("footprint", "--plot", dir.toString());
        assertEquals(2, p.code(), p.all());
        assertTrue(p.err().contains("is a directory"), p.all());
    }

    @Test
    void fidelityTakesTextFilesAndElementTypeLists(@TempDir Path dir) throws Exception {
        Run bad = run("eval", "fidelity", "--kv-dtype", "f32,fp8");
        assertEquals(2, bad.code(), bad.all());
        assertTrue(bad.err().contains("'fp8'") && bad.err().contains("f32, f16, bf16"), bad.all());
        Run missing = run("eval", "fidelity", "--texts", dir.resolve("none.txt").toString());
        assertEquals(2, missing.code(), missing.all());
        Path latin1 = Files.write(dir.resolve("latin1.txt"), new byte[]{'c', 'a', 'f', (byte) 0xe9, '\n'});
        Run notUtf8 = run("eval", "fidelity", "--texts", latin1.toString());
        assertEquals(2, notUtf8.code(), notUtf8.all());
        assertTrue(notUtf8.err().contains("not UTF-8"), notUtf8.all());
        // one short text of the user's, two element types, one policy and budget: runs and reports both types
        String story = EvalTextSetSample.TEXT;
        Path texts = Files.writeString(dir.resolve("mine.jsonl"), "{\"text\": " + io.kvslab.bench.report.Json.quote(
                story) + "}\n");
        Run ok = run("eval", "fidelity", "--texts", texts.toString(), "--continuation", "8", "--min-context", "16",
                "--budgets", "0.5", "--policies", "snapkv", "--kv-dtype", "f32,FP16", "--attention", "java", "-q");
        assertEquals(0, ok.code(), ok.all());
        assertTrue(ok.out().startsWith("1 texts"), ok.all());
        assertTrue(ok.out().contains("| full | f16 | 100% |") && ok.out().contains("| snapkv | f16 | 50% |"),
                ok.all());
    }

    @Test
    void verboseAddsTheStackTrace(@TempDir Path dir) {
        String missing = dir.resolve("none").toString();
        assertFalse(run("snapshot", "inspect", missing).err().contains("\tat "));
        assertTrue(run("snapshot", "inspect", "-v", missing).err().contains("\tat "));
    }

    private static Path snapshot(Path dir) {
        KvLayout layout = KvLayout.of(2, 4, 2, 8, DType.F16);
        Path file = dir.resolve("s.kvsnap");
        try (KvStore store = KvStore.open(layout); Sequence a = store.newSequence(); Sequence b = store.newSequence()) {
            float[] k = new float[layout.kvHeads() * layout.headDim()];
            float[] v = new float[k.length];
            for (int t = 0; t < 40; t++) {
                for (int l = 0; l < layout.layers(); l++) {
                    java.util.Arrays.fill(k, t + l);
                    java.util.Arrays.fill(v, -t);
                    a.append(l, k, v, t);
                    if (t < 10) {
                        b.append(l, k, v, t);
                    }
                }
            }
            Snapshots.save(List.of(a, b), file);
        }
        return file;
    }

    @Test
    @SuppressWarnings("unchecked")
    void snapshotInspectAndVerifyReadARealFile(@TempDir Path dir) {
        Path file = snapshot(dir);
        Run text = run("snapshot", "inspect", file.toString());
        assertEquals(0, text.code(), text.all());
        assertTrue(text.out().contains("2 layers, 4 query heads, 2 KV heads, head dim 8, f16"), text.all());
        assertTrue(text.out().contains("sequences   2"), text.all());
        // rows = (40 + 10 tokens) x 2 layers x 2 KV heads
        assertTrue(text.out().contains("200 K/V rows"), text.all());

        Run json = run("snapshot", "verify", file.toString(), "--json");
        assertEquals(0, json.code(), json.all());
        Map<String, Object> j = (Map<String, Object>) Json.parse(json.out());
        assertEquals(200L, j.get("rows"));
        assertEquals(true, j.get("ok"));
        List<Map<String, Object>> restored = (List<Map<String, Object>>) j.get("restored");
        assertEquals(List.of(160L, 40L), restored.stream().map(m -> m.get("rows")).toList());
        Run ok = run("snapshot", "verify", file.toString());
        assertEquals(0, ok.code(), ok.all());
        assertTrue(ok.out().contains(": ok"), ok.all());
    }

    @Test
    void aCorruptSnapshotFailsWithOneLineAndExitOne(@TempDir Path dir) throws Exception {
        Path file = snapshot(dir);
        byte[] bytes = Files.readAllBytes(file);
        bytes[bytes.length / 2] ^= 0x5a;   // inside the block data: only the checksum can notice
        Path bad = dir.resolve("bad.kvsnap");
        Files.write(bad, bytes);
        for (String action : List.of("inspect", "verify")) {
            Run r = run("snapshot", action, bad.toString());
            assertEquals(1, r.code(), r.all());
            assertEquals(1, r.err().lines().count(), r.all());
            assertTrue(r.err().startsWith("kvslab snapshot " + action + ": " + bad), r.all());
            assertTrue(r.out().isEmpty(), r.all());
        }
        Path truncated = dir.resolve("short.kvsnap");
        Files.write(truncated, java.util.Arrays.copyOf(bytes, 20));
        assertEquals(1, run("snapshot", "verify", truncated.toString()).code());
    }
}
