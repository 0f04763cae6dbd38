package io.kvslab.bench.fuzz;

import io.kvslab.snapshot.SnapshotInfo;
import io.kvslab.snapshot.Snapshots;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fuzzer's own parts: seed parsing against the library's view of the same file, the CRC fixer, the oracles. */
class FuzzEngineTest {
    @TempDir
    Path dir;

    private static Field field(Structure s, String name) {
        return s.fields().stream().filter(f -> f.name().equals(name)).findFirst()
                .orElseThrow(() -> new AssertionError("no field " + name));
    }

    @Test
    void snapshotSeedsParseToTheFieldsTheLibraryReports() throws IOException {
        for (Structure s : SnapshotCaseRunner.seeds(dir)) {
            Path p = dir.resolve(s.name());
            Files.write(p, s.bytes());
            SnapshotInfo info = Snapshots.inspect(p);
            byte[] b = s.bytes();
            assertEquals(info.layout().layers(), field(s, "header.layers").read(b), s.name());
            assertEquals(info.layout().headDim(), field(s, "header.headDim").read(b), s.name());
            assertEquals(info.sequenceIds().size(), field(s, "header.sequences").read(b), s.name());
            assertEquals(info.blocks(), field(s, "header.blocks").read(b), s.name());
            assertEquals(info.blocks(), s.fields().stream().filter(f -> f.name().endsWith(".crc")
                    && f.name().startsWith("block[")).count(), s.name());
            long tableRows = s.fields().stream().filter(f -> f.name().endsWith(".rows") && f.name().startsWith("table"))
                    .mapToLong(f -> f.read(b)).sum();
            assertEquals(info.rows(), tableRows, s.name());
            // the table section's CRC sits right before the data section
            assertEquals(field(s, "header.dataOffset").read(b) - 4, field(s, "tables.crc").offset(), s.name());
        }
    }

    @Test
    void recomputedChecksumsMakeAMutatedPayloadVerifyAgain() throws IOException {
        Structure s = SnapshotCaseRunner.seeds(dir).get(0);
        byte[] b = s.bytes().clone();
        Field payload = field(s, "block[0].row[0][0]");
        payload.write(b, Float.floatToFloat16(0.125f));   // a different finite F16 value
        Path p = dir.resolve("fixed.kvs");
        Files.write(p, b);
        assertTrue(assertThrowsCorrupt(p).contains("checksum mismatch"));
        SnapshotStructure.recomputeCrcs(b);
        Files.write(p, b);
        assertEquals(Snapshots.inspect(dir.resolve(writeSeed(s))).rows(), Snapshots.inspect(p).rows());
    }

    private String writeSeed(Structure s) throws IOException {
        Files.write(dir.resolve(s.name()), s.bytes());
        return s.name();
    }

    private static String assertThrowsCorrupt(Path p) {
        try {
            Snapshots.inspect(p);
        } catch (io.kvslab.snapshot.SnapshotException e) {
            if (e.reason() != io.kvslab.snapshot.SnapshotException.Reason.CORRUPT) {
                throw new AssertionError("expected a corrupt-file rejection, got " + e.reason(), e);
            }
            return e.getMessage();
        }
        throw new AssertionError("inspect accepted " + p);
    }

    @Test
    void ggufOracleSeesAliasedAndOutOfFileTensors() {
        byte[] seed = SeedModels.ggufSeeds().get(0);
        assertNull(GgufStructure.placementProblem(seed), "the seed's tensors are disjoint");
        Structure s = GgufStructure.parse("f32.gguf", seed);
        List<Field> offsets = s.offsetGroups().get(0);
        assertEquals(s.fields().stream().filter(f -> f.name().endsWith(".offset")).count(), offsets.size());
        byte[] aliased = seed.clone();
        offsets.get(3).write(aliased, offsets.get(2).read(aliased));
        String problem = GgufStructure.placementProblem(aliased);
        assertNotNull(problem);
        assertTrue(problem.contains("overlap"), problem);
        byte[] past = seed.clone();
        offsets.get(0).write(past, seed.length);
        assertTrue(GgufStructure.placementProblem(past).contains("outside"));
    }

    @Test
    void llama2cExpectedSizeIsTheSeedsLength() {
        for (boolean shared : new boolean[] {true, false}) {
            byte[] b = SeedModels.llama2c(SeedModels.F32_MODEL, shared, 1);
            assertEquals(b.length, Llama2cStructure.expectedSize(b));
            byte[] c = b.clone();
            ByteBuffer.wrap(c).order(ByteOrder.LITTLE_ENDIAN).putInt(8, 3);   // n_layers 2 -> 3
            assertTrue(Llama2cStructure.expectedSize(c) > b.length);
        }
    }

    @Test
    void casesAreDeterministicAndMostlyTargetCountsSizesAndOffsets() {
        List<byte[]> g = SeedModels.ggufSeeds();
        List<Structure> seeds = List.of(GgufStructure.parse("a", g.get(0)), GgufStructure.parse("b", g.get(1)));
        CaseGenerator one = new CaseGenerator(FuzzTarget.GGUF, seeds, List.of(), 7);
        CaseGenerator two = new CaseGenerator(FuzzTarget.GGUF, seeds, List.of(), 7);
        Set<String> structural = seeds.stream().flatMap(s -> s.fields().stream())
                .filter(f -> f.kind() == FieldKind.COUNT || f.kind() == FieldKind.SIZE || f.kind() == FieldKind.DIM
                        || f.kind() == FieldKind.OFFSET).map(Field::name).collect(Collectors.toSet());
        int targeted = 0;
        int n = 2000;
        for (long id = 0; id < n; id++) {
            FuzzCase a = one.next(id);
            FuzzCase b = two.next(id);
            assertArrayEquals(a.file(), b.file(), "case " + id);
            assertEquals(a.mutation(), b.mutation());
            String m = a.mutation();
            if (structural.stream().anyMatch(m::contains) || m.startsWith("alias") || m.startsWith("offset")) {
                targeted++;
            }
        }
        assertFalse(Arrays.equals(one.next(1).file(), one.next(2).file()));
        assertTrue(targeted > n / 2, targeted + " of " + n + " cases touch a count, size, dimension or offset");
    }

    @Test
    void reportJsonEscapesAndCounts() {
        FuzzReport r = new FuzzReport(FuzzTarget.GGUF, 5, 3, 1, 1, 1, 0, 0, 0, 10,
                List.of(new FuzzReport.Finding(2, "UNEXPECTED_EXCEPTION", "a.gguf", "field \"x\"=1", "boom\nline", "at X")));
        String json = r.toJson();
        assertTrue(json.startsWith("{\"target\":\"gguf\",\"seed\":5,\"cases\":3,\"typedRejections\":1,\"accepted\":1,"
                + "\"unexpectedExceptions\":1,"), json);
        assertTrue(json.contains("\"mutation\":\"field \\\"x\\\"=1\",\"error\":\"boom\\nline\""), json);
        assertFalse(r.clean());
    }
}
