package io.kvslab.bench.eval;

import io.kvslab.bench.model.Tokenizer;
import io.kvslab.bench.report.Json;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A user's own evaluation texts ({@code eval fidelity --texts FILE}): UTF-8, either one text per line, or JSON Lines
 * with a string field {@code "text"} per line (chosen when the file name ends in {@code .jsonl} or its first
 * non-blank line starts with <code>{</code>). Blank lines are skipped. Each text is tokenized without BOS (the eval
 * adds it); a story's "seed" is its line number. Anything else is refused with an {@link IllegalArgumentException}
 * naming the line.
 */
public final class TextFile {
    /** Larger files are refused before reading (a text set, not a corpus). */
    public static final long MAX_BYTES = 64L << 20;

    private TextFile() {
    }

    /** Reads {@code file} into a text set tokenized with {@code tokenizer}. */
    public static EvalTextSet read(Path file, Tokenizer tokenizer) throws IOException {
        long size = Files.size(file);
        if (size > MAX_BYTES) {
            throw new IllegalArgumentException(file + " holds " + size + " bytes; --texts takes at most " + MAX_BYTES
                    + " bytes (one text per line or JSON Lines)");
        }
        String content;
        try {
            content = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(Files.readAllBytes(file))).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(file + " is not UTF-8 text (" + e.getMessage() + ")");
        }
        if (content.startsWith("\uFEFF")) {
            content = content.substring(1);
        }
        String[] lines = content.split("\r?\n", -1);
        boolean jsonl = file.getFileName().toString().endsWith(".jsonl");
        for (String line : lines) {
            if (!line.isBlank()) {
                jsonl |= line.strip().startsWith("{");
                break;
            }
        }
        List<EvalTextSet.Story> stories = new ArrayList<>();
        for (int i = 0; i < lines.length; i++) {
            if (lines[i].isBlank()) {
                continue;
            }
            String text = jsonl ? textField(file, i + 1, lines[i]) : lines[i];
            if (text.isBlank()) {
                continue;
            }
            stories.add(new EvalTextSet.Story(i + 1, tokenizer.encode(text, false, false), text));
        }
        if (stories.isEmpty()) {
            throw new IllegalArgumentException(file + " holds no text (blank lines only)");
        }
        return new EvalTextSet(file.getFileName().toString(), Float.NaN, Float.NaN, 0,
                "--texts " + file, stories);
    }

    private static String textField(Path file, int line, String json) {
        Object value;
        try {
            value = Json.parse(json);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + " line " + line + ": not JSON (" + e.getMessage() + "); JSON "
                    + "Lines need one object with a \"text\" string per line");
        }
        if (!(value instanceof Map<?, ?> m) || !(m.get("text") instanceof String text)) {
            throw new IllegalArgumentException(file + " line " + line + ": JSON Lines need an object with a "
                    + "\"text\" string field");
        }
        return text;
    }
}
