package io.kvslab.bench.cli;

/** A command-line argument was missing or malformed; the message says which and what is allowed. */
final class UsageException extends Exception {
    UsageException(String message) {
        super(message);
    }
}
