package io.kvslab.examples;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Code blocks in README.md and docs/*.md that follow an {@code <!-- include: FILE#NAME -->} comment must equal the
 * region between {@code // [doc:NAME]} and {@code // [/doc:NAME]} of FILE (common indentation removed), so
 * documented examples are the code CI compiles and runs.
 */
class DocExamplesTest {
    private static final Path ROOT = Path.of("..");
    private static final Pattern INCLUDE = Pattern.compile(
            "<!-- include: (\\S+)#(\\S+) -->\\s*\\n```java\\n(.*?)```", Pattern.DOTALL);

    record Include(Path doc, String file, String region, String block) {}

    static List<Include> includes() throws IOException {
        List<Path> docs = new ArrayList<>(List.of(ROOT.resolve("README.md")));
        try (Stream<Path> s = Files.list(ROOT.resolve("docs"))) {
            s.filter(p -> p.toString().endsWith(".md")).sorted().forEach(docs::add);
        }
        List<Include> found = new ArrayList<>();
        for (Path doc : docs) {
            Matcher m = INCLUDE.matcher(Files.readString(doc));
            while (m.find()) {
                found.add(new Include(doc, m.group(1), m.group(2), m.group(3)));
            }
        }
        return found;
    }

    static String region(Path file, String name) throws IOException {
        List<String> lines = Files.readAllLines(file);
        int start = -1;
        int end = -1;
        for (int i = 0; i < lines.size(); i++) {
            String t = lines.get(i).trim();
            if (t.equals("// [doc:" + name + "]")) {
                start = i + 1;
            } else if (t.equals("// [/doc:" + name + "]")) {
                end = i;
            }
        }
        assertTrue(start >= 0 && end >= start, file + " has no region " + name);
        List<String> body = lines.subList(start, end);
        int indent = body.stream().filter(l -> !l.isBlank())
                .mapToInt(l -> l.length() - l.stripLeading().length()).min().orElse(0);
        StringBuilder sb = new StringBuilder();
        for (String l : body) {
            sb.append(l.isBlank() ? "" : l.substring(indent)).append('\n');
        }
        return sb.toString();
    }

    @Test
    void everyIncludedExampleEqualsItsSource() throws IOException {
        List<Include> includes = includes();
        List<String> docs = includes.stream().map(i -> i.doc().getFileName().toString()).distinct().toList();
        assertTrue(docs.containsAll(List.of("README.md", "embedding.md")), "includes found in " + docs);
        for (Include inc : includes) {
            assertEquals(region(ROOT.resolve(inc.file()), inc.region()), inc.block(),
                    inc.doc() + ": the code block of " + inc.file() + "#" + inc.region() + " differs from the source");
        }
    }

    @Test
    void aChangedBlockIsDetected() throws IOException {
        Include inc = includes().get(0);
        String source = region(ROOT.resolve(inc.file()), inc.region());
        assertFalse(source.equals(inc.block().replaceFirst("\\(", "( ")), "a one-character edit must not match");
    }
}
