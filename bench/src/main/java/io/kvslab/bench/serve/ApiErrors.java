package io.kvslab.bench.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;

import java.io.IOException;
import java.io.OutputStream;

/** OpenAI's error object: {@code {"error":{"message":...,"type":...,"param":...,"code":...}}}. */
final class ApiErrors {
    static final ObjectMapper JSON = new ObjectMapper();

    private ApiErrors() {}

    static ObjectNode body(String type, String param, String code, String message) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode e = root.putObject("error");
        e.put("message", message);
        e.put("type", type);
        e.put("param", param);
        e.put("code", code);
        return root;
    }

    static void send(HttpExchange ex, int status, String type, String param, String code, String message)
            throws IOException {
        byte[] b = JSON.writeValueAsBytes(body(type, param, code, message));
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }
}
