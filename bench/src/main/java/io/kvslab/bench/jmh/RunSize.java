package io.kvslab.bench.jmh;

/**
 * How much of a suite {@code kvslab bench NAME} runs. The default is sized to finish in about a minute on the 2-core
 * development machine (the configurations an issue's goal names, the benchmarks' own iteration counts where they
 * fit); {@code --quick} runs the same configurations with short iterations; {@code --full} every configuration the
 * benchmark classes declare, with their own iteration counts, which takes several minutes.
 */
public enum RunSize {
    QUICK, DEFAULT, FULL;

    public boolean quick() {
        return this == QUICK;
    }

    public boolean full() {
        return this == FULL;
    }
}
