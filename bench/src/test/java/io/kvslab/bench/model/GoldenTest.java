package io.kvslab.bench.model;

import io.kvslab.DType;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Every llama2.c reference output in ../shared/reference, reproduced token for token and byte for byte. */
class GoldenTest {
    /** The runner configurations that must reproduce llama2.c. */
    enum Runner {
        /** llama2.c's arithmetic end to end (Java matmul, Java KV arrays). */
        REFERENCE(KvBackend.JAVA, MatMul.JAVA),
        /** The real runner: KV store + native attention kernel, OpenBLAS matmul. */
        STORE(KvBackend.STORE, MatMul.OPENBLAS),
        /** KV store with Java attention over the rows read back. */
        STORE_JAVA(KvBackend.STORE_JAVA, MatMul.JAVA);

        final KvBackend kv;
        final MatMul matMul;

        Runner(KvBackend kv, MatMul matMul) {
            this.kv = kv;
            this.matMul = matMul;
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (SharedModels.Golden g : SharedModels.goldens()) {
            for (String file : List.of("bin", "gguf")) {
                for (Runner r : Runner.values()) {
                    out.add(Arguments.of(g.file(), file, r));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} from .{1} on {2}")
    @MethodSource("cases")
    void reproducesLlama2c(String golden, String file, Runner runner) {
        SharedModels.Golden g = SharedModels.goldens().stream().filter(x -> x.file().equals(golden)).findFirst().orElseThrow();
        LoadedModel m = file.equals("bin") ? SharedModels.bin() : SharedModels.gguf();
        try (Session s = new Session(m.model(), runner.kv.open(m.model().config(), DType.F32), runner.matMul, 16)) {
            Generation gen = Generator.generate(s, m.tokenizer(), g.prompt(), g.steps(),
                    new Sampler(m.model().config().vocabSize(), g.temperature(), g.topp(), g.seed()), null);
            assertArrayEquals(g.ids(), gen.ids(), "token ids of " + golden);
            assertEquals(g.text(), gen.text(), "text of " + golden);
        }
    }
}
