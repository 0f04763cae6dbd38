package io.kvslab.bench.cli;

import io.kvslab.KvLayout;
import io.kvslab.KvStore;
import io.kvslab.StoreConfig;
import io.kvslab.bench.report.Json;
import io.kvslab.snapshot.RestoredSequence;
import io.kvslab.snapshot.SnapshotException;
import io.kvslab.snapshot.SnapshotInfo;
import io.kvslab.snapshot.Snapshots;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code kvslab snapshot inspect|verify FILE}: what a snapshot file (io.kvslab.snapshot) holds, and whether it is
 * intact. A corrupt file is one line on stderr and exit code 1.
 */
@Command(name = "snapshot", mixinStandardHelpOptions = true,
        subcommands = {SnapshotCommand.Inspect.class, SnapshotCommand.Verify.class},
        description = "Inspect or verify a KV snapshot file written by io.kvslab.snapshot.Snapshots.")
final class SnapshotCommand {
    private SnapshotCommand() {}

    @Command(name = "inspect", mixinStandardHelpOptions = true,
            description = "Print the layout, sequences, rows, blocks and bytes of a snapshot (reading it verifies "
                    + "its checksums).")
    static final class Inspect implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Parameters(paramLabel = "FILE", description = "the snapshot file")
        private Path file;

        @Option(names = "--json", description = "print JSON")
        private boolean json;

        @Override
        public Integer call() {
            SnapshotInfo info = read(spec, file);
            PrintWriter out = spec.commandLine().getOut();
            out.println(json ? json(file, info, null) : text(file, info));
            return 0;
        }
    }

    @Command(name = "verify", mixinStandardHelpOptions = true,
            description = "Check a snapshot's checksums and structure, and restore it into a scratch store of its "
                    + "layout (then close it): exit 0 if intact, 1 if not.")
    static final class Verify implements Callable<Integer> {
        @Spec
        private CommandSpec spec;

        @Parameters(paramLabel = "FILE", description = "the snapshot file")
        private Path file;

        @Option(names = "--json", description = "print JSON")
        private boolean json;

        @Override
        public Integer call() {
            SnapshotInfo info = read(spec, file);
            List<long[]> lengths = new ArrayList<>();
            KvLayout l = info.layout();
            // the scratch store is bounded by the file: its rows cannot need much more than the file holds
            try (KvStore store = KvStore.open(l, new StoreConfig(
                    Math.addExact(Math.multiplyExact(info.fileBytes(), 2), 64 * StoreConfig.DEFAULT_SLAB_BYTES),
                    StoreConfig.DEFAULT_SLAB_BYTES))) {
                for (RestoredSequence r : Snapshots.restoreAll(store, file)) {
                    long rows = 0;
                    for (int layer = 0; layer < l.layers(); layer++) {
                        for (int h = 0; h < l.kvHeads(); h++) {
                            rows += r.sequence().length(layer, h);
                        }
                    }
                    lengths.add(new long[] {r.savedId(), rows});
                    r.sequence().close();
                }
            } catch (SnapshotException e) {
                throw new CorruptFile(file, e);
            }
            long restored = lengths.stream().mapToLong(x -> x[1]).sum();
            if (restored != info.rows()) {
                throw new CorruptFile(file, "the header counts " + info.rows() + " rows but " + restored
                        + " were restored");
            }
            PrintWriter out = spec.commandLine().getOut();
            if (json) {
                out.println(json(file, info, lengths));
            } else {
                out.printf(Locale.ROOT, "%s: ok (checksums match; %d sequence(s), %,d rows restored and released)%n",
                        file, lengths.size(), restored);
            }
            return 0;
        }
    }

    /** A snapshot that fails its checks: exit code 1 (the command worked; the file is bad). */
    static final class CorruptFile extends RuntimeException {
        CorruptFile(Path file, SnapshotException e) {
            super(file + ": " + e.getMessage().replace(file + ": ", ""));
        }

        CorruptFile(Path file, String what) {
            super(file + ": " + what);
        }
    }

    private static SnapshotInfo read(CommandSpec spec, Path file) {
        Check.inputFile(spec, "FILE", file);
        try {
            return Snapshots.inspect(file);
        } catch (SnapshotException e) {
            throw new CorruptFile(file, e);
        }
    }

    private static String text(Path file, SnapshotInfo i) {
        KvLayout l = i.layout();
        return String.format(Locale.ROOT, """
                file        %s (%,d bytes, format version %d, written %s)
                layout      %d layers, %d query heads, %d KV heads, head dim %d, %s, %d tokens/block
                sequences   %d (saved ids %s)
                rows        %,d K/V rows over all sequences, layers and KV heads
                blocks      %,d stored (%,d shared by more than one table slot), %s""",
                file, i.fileBytes(), i.formatVersion(), Instant.ofEpochMilli(i.createdAtMillis()), l.layers(),
                l.queryHeads(), l.kvHeads(), l.headDim(), l.dtypeName(),
                l.tokensPerBlock(), i.sequenceIds().size(), i.sequenceIds(), i.rows(), i.blocks(), i.sharedBlocks(),
                l.keyBlockBytes() == l.valueBlockBytes()
                        ? String.format(Locale.ROOT, "%,d bytes each", l.keyBlockBytes())
                        : String.format(Locale.ROOT, "K blocks %,d bytes, V blocks %,d bytes", l.keyBlockBytes(),
                                l.valueBlockBytes()));
    }

    private static Json json(Path file, SnapshotInfo i, List<long[]> restored) {
        KvLayout l = i.layout();
        Json layout = Json.object().put("layers", l.layers()).put("queryHeads", l.queryHeads())
                .put("kvHeads", l.kvHeads()).put("headDim", l.headDim())
                .put("dtype", l.dtypeName()).put("keyDtype", l.keyDtype().name().toLowerCase(Locale.ROOT))
                .put("valueDtype", l.valueDtype().name().toLowerCase(Locale.ROOT))
                .put("tokensPerBlock", l.tokensPerBlock());
        Json j = Json.object().put("file", file.toString()).put("fileBytes", i.fileBytes())
                .put("formatVersion", i.formatVersion()).put("createdAtMillis", i.createdAtMillis())
                .put("layout", layout).put("sequenceIds", i.sequenceIds()).put("rows", i.rows())
                .put("blocks", i.blocks()).put("sharedBlocks", i.sharedBlocks())
                .put("blockBytes", l.keyBlockBytes()).put("valueBlockBytes", l.valueBlockBytes());
        if (restored != null) {
            List<Object> seqs = new ArrayList<>();
            for (long[] r : restored) {
                seqs.add(Json.object().put("savedId", r[0]).put("rows", r[1]));
            }
            j.put("ok", true).put("restored", seqs);
        }
        return j;
    }
}
