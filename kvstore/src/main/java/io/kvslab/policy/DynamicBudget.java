package io.kvslab.policy;

import io.kvslab.KvArgumentException;

/** The policy's own data-dependent budget ({@link Budget#dynamic()}). */
enum DynamicBudget implements Budget {
    /** The one instance. */
    INSTANCE;

    @Override
    public int rowsFor(int n) {
        throw new KvArgumentException("a dynamic budget has no fixed row count; only policies with a dynamic "
                + "layer rule (DBudgetKV) accept Budget.dynamic()");
    }

    @Override
    public String toString() {
        return "dynamic";
    }
}
