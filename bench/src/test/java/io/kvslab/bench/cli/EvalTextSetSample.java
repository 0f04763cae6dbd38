package io.kvslab.bench.cli;

/** A short story in the model's own style, for command-line runs over a user's text file. */
final class EvalTextSetSample {
    static final String TEXT = "Once upon a time, there was a little girl named Lily. She loved to play outside in "
            + "the park with her friends. One day, she saw a big red ball under a tree. She ran to the ball and "
            + "kicked it high into the sky. Her friends laughed and clapped, and they all played together until "
            + "the sun went down.";

    private EvalTextSetSample() {
    }
}
