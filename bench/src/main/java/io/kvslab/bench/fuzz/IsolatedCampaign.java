package io.kvslab.bench.fuzz;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Runs a campaign in batches, each in a child JVM ({@link FuzzChild}) started with this JVM's java, flags and class
 * path. A child that ends without its result line crashed (or was killed) while running the last case it announced:
 * that case counts as a crash, and the next child starts after it.
 */
final class IsolatedCampaign {
    private IsolatedCampaign() {}

    static FuzzReport run(FuzzTarget target, long cases, long seed, Duration timeout, long batch, PrintStream progress) {
        long start = System.nanoTime();
        long[] counts = new long[6];   // typed, accepted, unexpected, oracle, hangs, crashes
        List<FuzzReport.Finding> findings = new ArrayList<>();
        long next = 0;
        while (next < cases) {
            long to = Math.min(cases, next + batch);
            long resumeAt = child(target, seed, next, to, timeout, counts, findings);
            if (progress != null) {
                progress.printf("fuzz %s (isolated): %d/%d cases, %d typed, %d accepted, %d unexpected, %d oracle, "
                                + "%d hangs, %d crashes%n", target.name().toLowerCase(), resumeAt, cases, counts[0],
                        counts[1], counts[2], counts[3], counts[4], counts[5]);
            }
            next = resumeAt;
        }
        return new FuzzReport(target, seed, cases, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5],
                (System.nanoTime() - start) / 1_000_000,
                findings.subList(0, Math.min(findings.size(), FuzzCampaign.MAX_FINDINGS)));
    }

    /** Runs one child on [from, to); returns where the next child starts. */
    private static long child(FuzzTarget target, long seed, long from, long to, Duration timeout, long[] counts,
                              List<FuzzReport.Finding> findings) {
        List<String> cmd = new ArrayList<>();
        cmd.add(ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments()) {
            if (!a.startsWith("-agentlib:jdwp")) {
                cmd.add(a);
            }
        }
        String halt = System.getProperty(FuzzChild.HALT_AT_CASE);
        if (halt != null) {
            cmd.add("-D" + FuzzChild.HALT_AT_CASE + "=" + halt);   // test seam: see FuzzChild
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(FuzzChild.class.getName());
        cmd.addAll(List.of(target.name(), Long.toString(seed), Long.toString(from), Long.toString(to),
                Long.toString(timeout.toMillis())));
        Process p;
        try {
            p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start a fuzz child JVM: " + cmd.get(0), e);
        }
        long running = from - 1;
        boolean finished = false;
        List<FuzzReport.Finding> childFindings = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                String[] f = line.split(" ");
                switch (f[0]) {
                    case "C" -> running = Long.parseLong(f[1]);
                    case "F" -> childFindings.add(new FuzzReport.Finding(Long.parseLong(f[1]), FuzzChild.unb64(f[2]),
                            FuzzChild.unb64(f[3]), FuzzChild.unb64(f[4]), FuzzChild.unb64(f[5]), FuzzChild.unb64(f[6])));
                    case "R" -> {
                        for (int i = 0; i < 5; i++) {
                            counts[i] += Long.parseLong(f[1 + i]);
                        }
                        finished = true;
                    }
                    default -> { }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("lost the fuzz child's output", e);
        }
        int exit;
        try {
            exit = p.waitFor();
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new io.kvslab.KvSlabException("fuzz campaign interrupted");
        }
        findings.addAll(childFindings);
        if (finished && exit == 0) {
            return to;
        }
        if (running < from) {
            throw new IllegalStateException("the fuzz child JVM exited with " + exit + " before its first case ("
                    + String.join(" ", cmd) + ")");
        }
        // The child died in case `running`: the cases before it finished, but their counts died with the child.
        // Re-run them in a new child, then count the crash and go on after it.
        if (running > from) {
            long resumed = child(target, seed, from, running, timeout, counts, findings);
            if (resumed != running) {
                return resumed;
            }
        }
        counts[5]++;
        CaseGenerator gen = FuzzCampaign.generatorWithoutSeedCheck(target, seed);
        FuzzCase c = gen.next(running);
        findings.add(new FuzzReport.Finding(running, "CRASH", c.seed(), c.mutation(),
                "the JVM running this case exited with status " + exit + " (see its hs_err file)", ""));
        return running + 1;
    }
}
