package io.kvslab.bench.cli;

import picocli.CommandLine.Command;

/** {@code kvslab eval}: the evaluations (one so far, {@code fidelity}). */
@Command(name = "eval", mixinStandardHelpOptions = true, subcommands = FidelityCommand.class,
        description = "Evaluate compression policies on the real model (eval fidelity).")
final class EvalCommand {
}
