package io.kvslab.bench.eval;

import io.kvslab.bench.model.LoadedModel;
import io.kvslab.bench.model.SharedModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --texts FILE}: plain lines and JSON Lines, tokenized like the tokenizer does; bad files refused by line. */
class TextFileTest {
    @Test
    void plainLinesAndJsonLinesGiveTheSameTexts(@TempDir Path dir) throws Exception {
        LoadedModel m = SharedModels.bin();
        Path plain = Files.writeString(dir.resolve("texts.txt"), "Once upon a time\n\n  \nThe cat sat.\r\nÉclair ☕\n");
        Path jsonl = Files.writeString(dir.resolve("texts.jsonl"), "{\"text\": \"Once upon a time\", \"id\": 1}\n\n"
                + "{\"text\": \"The cat sat.\"}\n{\"text\": \"\\u00c9clair \\u2615\"}\n");
        EvalTextSet a = TextFile.read(plain, m.tokenizer());
        EvalTextSet b = TextFile.read(jsonl, m.tokenizer());
        assertEquals(3, a.stories().size());
        assertEquals(3, b.stories().size());
        for (int i = 0; i < 3; i++) {
            assertEquals(a.stories().get(i).text(), b.stories().get(i).text());
            assertArrayEquals(m.tokenizer().encode(a.stories().get(i).text(), false, false), a.stories().get(i).ids());
            assertArrayEquals(a.stories().get(i).ids(), b.stories().get(i).ids());
        }
        assertEquals("Éclair ☕", a.stories().get(2).text());
        assertEquals(5, a.stories().get(2).seed(), "a story's number is its line");
        assertEquals("line 5", a.origin(a.stories().get(2)));
        assertEquals("seed 1", EvalTextSet.load().origin(EvalTextSet.load().stories().get(0)));
        // a JSON object on the first line selects JSON Lines whatever the name
        Path named = Files.writeString(dir.resolve("texts.txt2"), "{\"text\": \"hello\"}\n");
        assertEquals("hello", TextFile.read(named, m.tokenizer()).stories().get(0).text());
    }

    @Test
    void badFilesAreRefusedNamingTheLine(@TempDir Path dir) throws Exception {
        LoadedModel m = SharedModels.bin();
        Path notUtf8 = Files.write(dir.resolve("latin1.txt"), "caf\u00e9\n".getBytes(StandardCharsets.ISO_8859_1));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TextFile.read(notUtf8, m.tokenizer()))
                .getMessage().contains("not UTF-8"));
        Path noText = Files.writeString(dir.resolve("a.jsonl"), "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TextFile.read(noText, m.tokenizer()))
                .getMessage().contains("line 2"));
        Path broken = Files.writeString(dir.resolve("b.jsonl"), "{\"text\": \"ok\"}\n{\"text\": \n");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> TextFile.read(broken, m.tokenizer()))
                .getMessage().contains("line 2"));
        Path number = Files.writeString(dir.resolve("c.jsonl"), "{\"text\": 5}\n");
        assertThrows(IllegalArgumentException.class, () -> TextFile.read(number, m.tokenizer()));
        Path blank = Files.writeString(dir.resolve("blank.txt"), "\n  \n");
        assertThrows(IllegalArgumentException.class, () -> TextFile.read(blank, m.tokenizer()));
    }
}
