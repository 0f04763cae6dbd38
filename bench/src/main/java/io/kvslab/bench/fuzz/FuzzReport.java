package io.kvslab.bench.fuzz;

import java.util.List;

/**
 * What a fuzz campaign found. Every case ends in exactly one of typed rejection, accepted, unexpected exception, oracle
 * violation or hang, so those five counts add up to {@code cases}. A crash (SIGSEGV) ends the JVM, so an in-process
 * campaign can only ever report 0 crashes; a run that dies shows the case id in its last progress line (see
 * docs/reliability.md).
 *
 * @param target               what was fuzzed
 * @param seed                 the campaign seed (cases are deterministic in seed and case id)
 * @param cases                cases run
 * @param typedRejections      files refused with the library's typed exception, naming the file
 * @param accepted             files read and used without error, and passing the oracle
 * @param unexpectedExceptions any other exception or error escaped
 * @param oracleViolations     accepted files that break a rule, or typed messages that do not name the file
 * @param hangs                cases that exceeded the per-case timeout
 * @param crashes              JVM crashes (always 0 in process; see above)
 * @param elapsedMillis        wall time of the campaign
 * @param findings             the first few non-clean cases, with their mutation and stack trace
 */
public record FuzzReport(FuzzTarget target, long seed, long cases, long typedRejections, long accepted,
                         long unexpectedExceptions, long oracleViolations, long hangs, long crashes,
                         long elapsedMillis, List<Finding> findings) {
    public FuzzReport {
        findings = List.copyOf(findings);
    }

    /**
     * One non-clean case.
     *
     * @param caseId     reproduce with the same target, seed and this id
     * @param outcome    UNEXPECTED_EXCEPTION, ORACLE_VIOLATION or HANG
     * @param seedFile   the seed it was mutated from
     * @param mutation   what was done to the seed
     * @param error      exception class and message, or what the oracle found
     * @param stackTrace the escaped throwable's stack (empty for oracle violations and hangs)
     */
    public record Finding(long caseId, String outcome, String seedFile, String mutation, String error, String stackTrace) {}

    /** No unexpected exception, oracle violation, hang or crash. */
    public boolean clean() {
        return unexpectedExceptions == 0 && oracleViolations == 0 && hangs == 0 && crashes == 0;
    }

    /** One line for a terminal. */
    public String summary() {
        return String.format("fuzz %s seed %d: %d cases in %.1f s: %d typed rejections, %d accepted, %d unexpected "
                        + "exceptions, %d oracle violations, %d hangs, %d crashes%s", target.name().toLowerCase(), seed,
                cases, elapsedMillis / 1000.0, typedRejections, accepted, unexpectedExceptions, oracleViolations, hangs,
                crashes, clean() ? "" : " (first findings: case ids " + findings.stream().map(f -> String.valueOf(f.caseId()))
                        .reduce((a, b) -> a + ", " + b).orElse("-") + ")");
    }

    public String toJson() {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"target\":\"").append(target.name().toLowerCase()).append('"')
                .append(",\"seed\":").append(seed)
                .append(",\"cases\":").append(cases)
                .append(",\"typedRejections\":").append(typedRejections)
                .append(",\"accepted\":").append(accepted)
                .append(",\"unexpectedExceptions\":").append(unexpectedExceptions)
                .append(",\"oracleViolations\":").append(oracleViolations)
                .append(",\"hangs\":").append(hangs)
                .append(",\"crashes\":").append(crashes)
                .append(",\"elapsedMillis\":").append(elapsedMillis)
                .append(",\"clean\":").append(clean())
                .append(",\"findings\":[");
        for (int i = 0; i < findings.size(); i++) {
            Finding f = findings.get(i);
            sb.append(i == 0 ? "" : ",").append("{\"caseId\":").append(f.caseId())
                    .append(",\"outcome\":").append(quote(f.outcome()))
                    .append(",\"seedFile\":").append(quote(f.seedFile()))
                    .append(",\"mutation\":").append(quote(f.mutation()))
                    .append(",\"error\":").append(quote(f.error()))
                    .append(",\"stackTrace\":").append(quote(f.stackTrace())).append('}');
        }
        return sb.append("]}").toString();
    }

    static String quote(String s) {
        return io.kvslab.bench.report.Json.quote(s);
    }
}
