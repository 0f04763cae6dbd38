package io.kvslab.bench.fuzz;

/** The outcome of one case, with what was wrong (null when nothing was) and the escaped throwable (if any). */
record CaseResult(Outcome outcome, String detail, Throwable error) {
    static CaseResult accepted() {
        return new CaseResult(Outcome.ACCEPTED, null, null);
    }

    static CaseResult typed() {
        return new CaseResult(Outcome.TYPED_REJECTION, null, null);
    }

    static CaseResult violation(String what) {
        return new CaseResult(Outcome.ORACLE_VIOLATION, what, null);
    }
}
