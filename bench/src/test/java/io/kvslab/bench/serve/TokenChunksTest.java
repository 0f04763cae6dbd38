package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The stream's pre-built token chunks are byte for byte the JSON tree Jackson writes for the same chunk. */
class TokenChunksTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static String tree(String id, long created, String model, String text, int token) throws Exception {
        ObjectNode root = JSON.createObjectNode();
        root.put("id", id);
        root.put("object", "text_completion");
        root.put("created", created);
        root.put("model", model);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("text", text);
        choice.put("index", 0);
        choice.putNull("logprobs");
        choice.put("finish_reason", (String) null);
        if (token >= 0) {
            choice.putArray("token_ids").add(token);
        }
        // as the server wrote every chunk before: the tree through the UTF-8 generator (writeValueAsBytes)
        return "data: " + new String(JSON.writeValueAsBytes(root), java.nio.charset.StandardCharsets.UTF_8) + "\n\n";
    }

    @Test
    void chunksEqualTheJacksonTree() throws Exception {
        String[] texts = {" Once", "", "\"quoted\" \\ back\nslash\ttab", "caf\u00e9 \u2603 \ud83d\ude00", "\u0001\u001f"};
        String model = "stories \"260K\".bin";
        CompletionHandler.TokenChunks chunks = new CompletionHandler.TokenChunks("cmpl-7", 1764547200L, model);
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        StringBuilder expected = new StringBuilder();
        for (int i = 0; i < texts.length; i++) {
            int token = i % 2 == 0 ? 300 + i : -1;
            ByteArrayOutputStream one = new ByteArrayOutputStream();
            chunks.write(one, texts[i], token);
            String want = tree("cmpl-7", 1764547200L, model, texts[i], token);
            assertEquals(want, one.toString(StandardCharsets.UTF_8), "chunk " + i);
            chunks.write(all, texts[i], token);
            expected.append(want);
        }
        assertEquals(expected.toString(), all.toString(StandardCharsets.UTF_8), "chunks written back to back");
    }
}
