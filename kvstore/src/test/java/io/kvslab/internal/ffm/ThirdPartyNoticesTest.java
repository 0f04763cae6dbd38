package io.kvslab.internal.ffm;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every native file the kvslab-core jar bundles (its resources, packed as they are into the jar) is named in
 * THIRD-PARTY-NOTICES.md, and the licence and notices themselves go into META-INF.
 */
class ThirdPartyNoticesTest {
    private static final Path CLASSES = Path.of("target/classes");
    private static final Path NOTICES = Path.of("../THIRD-PARTY-NOTICES.md");

    @Test
    void everyBundledNativeFileIsNamedInTheNotices() throws Exception {
        String notices = Files.readString(NOTICES);
        List<String> bundled;
        try (Stream<Path> files = Files.walk(CLASSES.resolve("native"))) {
            bundled = files.filter(Files::isRegularFile).map(p -> p.getFileName().toString()).sorted().toList();
        }
        assertFalse(bundled.isEmpty(), "no native files under " + CLASSES.resolve("native"));
        assertTrue(bundled.containsAll(List.of("libkvslab.so", "libopenblas.so.0", "libgfortran.so.5",
                "libquadmath.so.0")), bundled.toString());
        for (String f : bundled) {
            assertTrue(notices.contains("`" + f + "`"), f + " is bundled but THIRD-PARTY-NOTICES.md does not name it");
        }
    }

    @Test
    void licenceAndNoticesAreInMetaInf() throws Exception {
        assertEquals(Files.readString(Path.of("../LICENSE")), Files.readString(CLASSES.resolve("META-INF/LICENSE")));
        assertTrue(Files.readString(Path.of("../LICENSE")).contains("Apache License"));
        assertEquals(Files.readString(NOTICES), Files.readString(CLASSES.resolve("META-INF/THIRD-PARTY-NOTICES.md")));
    }
}
