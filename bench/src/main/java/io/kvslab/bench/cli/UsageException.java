package io.kvslab.bench.cli;

/**
 * A mistake in how the command was called that picocli cannot see by itself (a file that does not exist, an output
 * directory that cannot be written, a value outside what a list option allows). Reported as one line, exit code 2.
 */
final class UsageException extends RuntimeException {
    UsageException(String message) {
        super(message);
    }
}
