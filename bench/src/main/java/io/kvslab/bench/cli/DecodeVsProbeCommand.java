package io.kvslab.bench.cli;

import io.kvslab.DType;
import io.kvslab.bench.jmh.InterleavedProbeRatio;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code kvslab bench decode-vs-probe}: {@link InterleavedProbeRatio} from the command line. */
@Command(name = "decode-vs-probe", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Decode attention of one Llama-3-8B layer vs the read probe, interleaved in one process (probe, "
                + "decode, probe, decode, ...; ratio of medians), so the machine's drift cancels. Not JMH; the "
                + "defaults take about 40 s and 1.5 GiB of native memory.")
final class DecodeVsProbeCommand implements Callable<Integer> {
    @Spec
    private CommandSpec spec;

    @Option(names = "--context", defaultValue = "32768", description = "tokens in the layer (default: ${DEFAULT-VALUE})")
    private int context;

    @Option(names = "--dtype", split = ",", defaultValue = "f16,f32",
            description = "stored row types, comma-separated: f32, f16, bf16, q8_0, q4_0 (default: ${DEFAULT-VALUE})")
    private List<String> dtypes;

    @Option(names = "--tokens-per-block", split = ",", defaultValue = "" + InterleavedProbeRatio.TOKENS_PER_BLOCK,
            description = "rows per block of the stores, comma-separated; several are measured in the same rounds, "
                    + "so they compare on one machine state (default: ${DEFAULT-VALUE})")
    private List<Integer> tokensPerBlock;

    @Option(names = "--threads", defaultValue = "2", description = "kernel and probe threads (default: ${DEFAULT-VALUE})")
    private int threads;

    @Option(names = "--layers", defaultValue = "1",
            description = "layers per element type, each its own store; a sample's steps go round them, so none is "
                    + "re-read while it may still be cached (default: ${DEFAULT-VALUE})")
    private int layers;

    @Option(names = "--append-tokens", defaultValue = "" + InterleavedProbeRatio.APPEND_TOKENS,
            description = "rows per append when filling the stores: 1024 = a chunked prefill (each head's blocks in "
                    + "runs), 1 = token by token as generation appends (the heads' blocks interleave) "
                    + "(default: ${DEFAULT-VALUE})")
    private int appendTokens;

    @Option(names = "--probe-mib", defaultValue = "" + InterleavedProbeRatio.PROBE_MIB,
            description = "the read probe's buffer in MiB; keep it far above the caches (default: ${DEFAULT-VALUE})")
    private int probeMib;

    @Option(names = "--rounds", defaultValue = "30", description = "measured rounds (default: ${DEFAULT-VALUE})")
    private int rounds;

    @Option(names = "--warmup", defaultValue = "5", description = "rounds run first and not counted (default: ${DEFAULT-VALUE})")
    private int warmup;

    @Option(names = "--json", description = "print JSON instead of the table")
    private boolean json;

    @Override
    public Integer call() {
        Check.range(spec, "--context", context, 1024, 1 << 20);
        Check.range(spec, "--threads", threads, 1, 256);
        for (int tpb : tokensPerBlock) {
            Check.range(spec, "--tokens-per-block", tpb, 1, 65536);
        }
        Check.range(spec, "--layers", layers, 1, 1024);
        Check.range(spec, "--append-tokens", appendTokens, 1, context);
        Check.range(spec, "--probe-mib", probeMib, 1, 1 << 20);
        Check.range(spec, "--rounds", rounds, 1, 100_000);
        Check.range(spec, "--warmup", warmup, 0, 100_000);
        List<String> names = List.of("f32", "f16", "bf16", "q8_0", "q4_0");
        List<DType> types = new ArrayList<>();
        for (String d : dtypes) {
            types.add(DType.valueOf(Check.choice(spec, "--dtype", d, names).toUpperCase(Locale.ROOT)));
        }
        InterleavedProbeRatio.Report report = InterleavedProbeRatio.run(context, types, tokensPerBlock, threads, layers,
                appendTokens, probeMib,
                rounds, warmup, System.err);
        spec.commandLine().getOut().println(json ? report.json() : report.table());
        return 0;
    }
}
