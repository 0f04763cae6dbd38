package io.kvslab.bench.model;

/**
 * Whether the forward pass may use {@link PanelMatMul}: only when the JVM runs with
 * {@code --add-modules jdk.incubator.vector} (the launcher adds it for {@code serve}; the bench tests run with it)
 * and the CPU has SIMD registers of 4 floats or more. Kept apart from {@link PanelMatMul} so that asking never loads
 * a class of the incubator module. {@code -Dkvslab.matmul.simd=false} turns it off (for A/B measurements).
 */
final class VectorMatMul {
    private VectorMatMul() {}

    private static final boolean AVAILABLE = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && Boolean.parseBoolean(System.getProperty("kvslab.matmul.simd", "true"))
            && PanelMatMul.worthwhile();

    static boolean available() {
        return AVAILABLE;
    }
}
