package io.kvslab.bench.cli;

/** One {@code kvslab} sub-command. */
interface Command {
    /** One line for {@code kvslab --help}. */
    String summary();

    /** Full usage text, printed on a usage error. */
    String usage();

    /** Runs the command; the return value is the process exit code. */
    int run(String[] args) throws UsageException;
}
