package io.kvslab.tier;

/** Child-JVM main for {@link RedisTierTest}: opens a Redis tier and prints what happened. */
public final class RedisTierProbe {
    private RedisTierProbe() {}

    public static void main(String[] args) {
        try (RedisTier t = RedisTier.connect(RedisTierConfig.of(args[0]))) {
            System.out.println("OPENED connected=" + t.connected());
        } catch (RuntimeException e) {
            System.out.println("THROWN " + e.getClass().getName() + ": " + e.getMessage());
        }
    }
}
