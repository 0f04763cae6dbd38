package io.kvslab.bench.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

/**
 * {@code kvslab stress [long|churn|all]}: long-context streaming with compression, and multi-threaded churn.
 * Without a subcommand it runs both, like {@code all}.
 */
@Command(name = "stress", mixinStandardHelpOptions = true, sortOptions = false,
        subcommands = {StressCommand.Long.class, StressCommand.Churn.class, StressCommand.All.class},
        description = {"Stress tests with invariant checks: streaming a long context with decoding-time compression "
                + "(long), and many sequences churning on all cores (churn). Without a subcommand: both.",
                "Exits 1 if any invariant was violated, 2 on a usage error.",
                "The defaults take about 1 min on 2 cores (long: 64k tokens over 4 Llama-3.1-8B layers; churn: 20 s); "
                        + "--full streams 1M tokens over all 32 layers (about 12 min, 3 GiB) and churns 30 s."})
final class StressCommand implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Mixin
    private StressOptions common;

    @Mixin
    private LongStressOptions longOptions;

    @Mixin
    private ChurnStressOptions churnOptions;

    @Override
    public Integer call() throws InterruptedException {
        return new StressRun(spec, common).run(longOptions, churnOptions);
    }

    @Command(name = "long", mixinStandardHelpOptions = true, sortOptions = false,
            description = "One sequence streaming a long context, compressed to a fixed budget as it grows; peak "
                    + "memory checked against the bound, attention against the plain-Java reference.")
    static final class Long implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Mixin
        private StressOptions common;

        @Mixin
        private LongStressOptions longOptions;

        @Override
        public Integer call() throws InterruptedException {
            return new StressRun(spec, common).run(longOptions, null);
        }
    }

    @Command(name = "churn", mixinStandardHelpOptions = true, sortOptions = false,
            description = "Many sequences created, appended, forked, evicted, compressed and closed on all cores "
                    + "for a fixed time, with paused global accounting checks.")
    static final class Churn implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Mixin
        private StressOptions common;

        @Mixin
        private ChurnStressOptions churnOptions;

        @Override
        public Integer call() throws InterruptedException {
            return new StressRun(spec, common).run(null, churnOptions);
        }
    }

    @Command(name = "all", mixinStandardHelpOptions = true, sortOptions = false,
            description = "long, then churn (the same as no subcommand).")
    static final class All implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Mixin
        private StressOptions common;

        @Mixin
        private LongStressOptions longOptions;

        @Mixin
        private ChurnStressOptions churnOptions;

        @Override
        public Integer call() throws InterruptedException {
            return new StressRun(spec, common).run(longOptions, churnOptions);
        }
    }
}
