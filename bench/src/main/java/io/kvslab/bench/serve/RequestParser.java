package io.kvslab.bench.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.kvslab.bench.model.Tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Turns a request body into a {@link CompletionRequest}, or an {@link InvalidRequestException} naming the field and
 * what it accepts. Fields OpenAI defines that this server does not use ({@code model}, {@code user}, ...) are ignored;
 * a known field of the wrong type is an error. {@code NaN} and {@code Infinity} are read as numbers so that they can
 * be refused by name rather than as a syntax error.
 */
final class RequestParser {
    static final int MAX_STOPS = 4;
    /** OpenAI's default {@code max_tokens} for completions. */
    static final int DEFAULT_MAX_TOKENS = 16;

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .build();

    private final Tokenizer tokenizer;
    private final int contextLength;

    RequestParser(Tokenizer tokenizer, int contextLength) {
        this.tokenizer = tokenizer;
        this.contextLength = contextLength;
    }

    CompletionRequest parse(byte[] body) {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            throw new InvalidRequestException("the body is not valid JSON: " + e.getOriginalMessage(), null);
        } catch (java.io.IOException e) {
            throw new InvalidRequestException("the body could not be read: " + e.getMessage(), null);
        }
        if (root == null || !root.isObject()) {
            throw new InvalidRequestException("the body must be a JSON object", null);
        }
        String prompt = prompt(root.get("prompt"));
        String tooLong = tokenizer.lengthProblem(prompt, contextLength);   // before the encoding's work grows
        if (tooLong != null) {
            throw new InvalidRequestException(tooLong, "prompt");
        }
        int[] tokens;
        try {
            tokens = tokenizer.encode(prompt, true, false);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("the prompt cannot be encoded: " + e.getMessage(), "prompt");
        }
        int room = contextLength - tokens.length + 1;
        if (room < 1) {
            throw new InvalidRequestException("the prompt encodes to " + tokens.length + " tokens (BOS included); the "
                    + "context holds " + contextLength, "prompt");
        }
        int maxTokens = integer(root, "max_tokens", DEFAULT_MAX_TOKENS);
        if (maxTokens < 1) {
            throw new InvalidRequestException("max_tokens must be >= 1, got " + maxTokens, "max_tokens");
        }
        if (maxTokens > room) {
            throw new InvalidRequestException("max_tokens " + maxTokens + " with a prompt of " + tokens.length
                    + " tokens is past the context of " + contextLength + " tokens: at most " + room, "max_tokens");
        }
        float temperature = number(root, "temperature", 1.0);
        if (!(temperature >= 0) || Float.isInfinite(temperature) || temperature > 2) {
            throw new InvalidRequestException("temperature must be a number in [0, 2], got " + temperature, "temperature");
        }
        float topP = number(root, "top_p", 1.0);
        if (!(topP > 0 && topP <= 1)) {
            throw new InvalidRequestException("top_p must be a number in (0, 1], got " + topP, "top_p");
        }
        JsonNode seedNode = root.get("seed");
        long seed;
        if (seedNode == null || seedNode.isNull()) {
            seed = ThreadLocalRandom.current().nextLong(1, Long.MAX_VALUE);
        } else {
            if (!seedNode.isIntegralNumber() || !seedNode.canConvertToLong()) {
                throw new InvalidRequestException("seed must be an integer, got " + seedNode, "seed");
            }
            seed = seedNode.longValue();
            if (seed == 0) {
                throw new InvalidRequestException("seed must not be 0 (the xorshift generator would stay at 0)", "seed");
            }
        }
        List<String> stops = stops(root.get("stop"));
        boolean stream = bool(root, "stream");
        boolean includeUsage = false;
        JsonNode options = root.get("stream_options");
        if (options != null && !options.isNull()) {
            if (!options.isObject()) {
                throw new InvalidRequestException("stream_options must be an object", "stream_options");
            }
            includeUsage = bool(options, "include_usage");
        }
        JsonNode n = root.get("n");
        if (n != null && !n.isNull() && !(n.isIntegralNumber() && n.intValue() == 1)) {
            throw new InvalidRequestException("n must be 1 (one choice per request), got " + n, "n");
        }
        return new CompletionRequest(tokens, maxTokens, temperature, topP, seed, stops, stream, includeUsage,
                bool(root, "return_token_ids"));
    }

    private static String prompt(JsonNode p) {
        if (p == null || p.isNull()) {
            throw new InvalidRequestException("prompt is required", "prompt");
        }
        if (p.isTextual()) {
            return p.textValue();
        }
        if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            return p.get(0).textValue();
        }
        throw new InvalidRequestException("prompt must be a string (or a list of one string), got " + kind(p), "prompt");
    }

    private static List<String> stops(JsonNode s) {
        List<String> out = new ArrayList<>();
        if (s == null || s.isNull()) {
            return out;
        }
        if (s.isTextual()) {
            out.add(s.textValue());
        } else if (s.isArray()) {
            for (JsonNode e : s) {
                if (!e.isTextual()) {
                    throw new InvalidRequestException("stop must be a string or a list of strings, got an element "
                            + kind(e), "stop");
                }
                out.add(e.textValue());
            }
        } else {
            throw new InvalidRequestException("stop must be a string or a list of strings, got " + kind(s), "stop");
        }
        if (out.size() > MAX_STOPS) {
            throw new InvalidRequestException("stop takes at most " + MAX_STOPS + " strings, got " + out.size(), "stop");
        }
        for (String x : out) {
            if (x.isEmpty()) {
                throw new InvalidRequestException("a stop string must not be empty", "stop");
            }
        }
        return out;
    }

    private static int integer(JsonNode root, String field, int fallback) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isIntegralNumber()) {
            throw new InvalidRequestException(field + " must be an integer, got " + kind(v), field);
        }
        if (!v.canConvertToInt()) {
            throw new InvalidRequestException(field + " is out of range: " + v, field);
        }
        return v.intValue();
    }

    private static float number(JsonNode root, String field, double fallback) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return (float) fallback;
        }
        if (!v.isNumber()) {
            throw new InvalidRequestException(field + " must be a number, got " + kind(v), field);
        }
        return (float) v.doubleValue();
    }

    private static boolean bool(JsonNode root, String field) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return false;
        }
        if (!v.isBoolean()) {
            throw new InvalidRequestException(field + " must be true or false, got " + kind(v), field);
        }
        return v.booleanValue();
    }

    private static String kind(JsonNode v) {
        return switch (v.getNodeType()) {
            case STRING -> "a string";
            case NUMBER -> "the number " + v;
            case BOOLEAN -> "a boolean";
            case ARRAY -> "a list";
            case OBJECT -> "an object";
            case NULL -> "null";
            default -> v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT);
        };
    }
}
