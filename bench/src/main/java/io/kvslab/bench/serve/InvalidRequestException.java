package io.kvslab.bench.serve;

/**
 * A completion request the server refuses: answered with HTTP 400 and OpenAI's error object
 * ({@code {"error":{"message":...,"type":"invalid_request_error","param":...}}}).
 */
final class InvalidRequestException extends RuntimeException {
    private final String param;

    /** @param param the request field at fault, or null when the body as a whole is */
    InvalidRequestException(String message, String param) {
        super(message);
        this.param = param;
    }

    String param() {
        return param;
    }
}
