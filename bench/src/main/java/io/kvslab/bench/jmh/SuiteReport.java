package io.kvslab.bench.jmh;

/** What a {@code kvslab bench} suite prints: a table for people, JSON for tools. */
public interface SuiteReport {
    String table();

    String json();
}
