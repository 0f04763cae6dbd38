package io.kvslab.bench.cli;

import picocli.CommandLine.Command;

/** {@code kvslab pod}: PoD's offline step (one so far, {@code calibrate}). */
@Command(name = "pod", mixinStandardHelpOptions = true, subcommands = PodCalibrateCommand.class,
        description = "Calibrate PoD's head-wise layer grouping for a model (pod calibrate).")
final class PodCommand {
}
