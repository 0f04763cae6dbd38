package io.kvslab.bench.fuzz;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;

/**
 * The child JVM of {@link FuzzCampaign#runIsolated}: runs cases [from, to) and talks to the parent on stdout, one line
 * per event: {@code C <id>} before each case (so the parent knows which case was running if this JVM dies), then
 * {@code F ...} per finding and a last {@code R ...} line with the counts. Not an API; args: target seed from to
 * timeoutMillis.
 */
public final class FuzzChild {
    /**
     * Test seam: a child given this system property halts the JVM abruptly (status 134, as a SIGSEGV'd JVM's shell
     * would report) when it reaches that case, which is how a crash looks to the parent.
     */
    static final String HALT_AT_CASE = "kvslab.fuzz.haltAtCase";

    private FuzzChild() {}

    public static void main(String[] args) {
        FuzzTarget target = FuzzTarget.valueOf(args[0]);
        long seed = Long.parseLong(args[1]);
        long from = Long.parseLong(args[2]);
        long to = Long.parseLong(args[3]);
        Duration timeout = Duration.ofMillis(Long.parseLong(args[4]));
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
                StandardCharsets.UTF_8);
        System.setOut(System.err);   // nothing else may write to the protocol stream
        long haltAt = Long.parseLong(System.getProperty(HALT_AT_CASE, "-1"));
        FuzzReport r = FuzzCampaign.runRange(target, from, to, seed, timeout, id -> {
            out.println("C " + id);
            if (id == haltAt) {
                out.flush();
                Runtime.getRuntime().halt(134);
            }
        });
        for (FuzzReport.Finding f : r.findings()) {
            out.println("F " + f.caseId() + " " + b64(f.outcome()) + " " + b64(f.seedFile()) + " " + b64(f.mutation())
                    + " " + b64(f.error()) + " " + b64(f.stackTrace()));
        }
        out.println("R " + r.typedRejections() + " " + r.accepted() + " " + r.unexpectedExceptions() + " "
                + r.oracleViolations() + " " + r.hangs());
        out.flush();
        // abandoned hung case threads are daemons; exit explicitly all the same
        System.exit(0);
    }

    static String b64(String s) {
        return Base64.getEncoder().encodeToString((s == null ? "" : s).getBytes(StandardCharsets.UTF_8));
    }

    static String unb64(String s) {
        return new String(Base64.getDecoder().decode(s), StandardCharsets.UTF_8);
    }
}
