package io.kvslab;

import io.kvslab.testing.ForkedJvm;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A JVM that refuses native access ({@code --illegal-native-access=deny} without {@code --enable-native-access}):
 * the library reports its kernels unavailable and the store still works on the Java path, slabs included (they
 * cannot come from {@code mmap} there), with every byte returned at close.
 */
class NativeAccessDeniedTest {
    @Test
    void aStoreWorksEndToEndWhenTheJvmDeniesNativeAccess() throws Exception {
        ForkedJvm.Result r = ForkedJvm.runDenyingNativeAccess(NativeAccessDeniedProbe.class, 120);
        assertTrue(r.clean() && r.stdout().contains("ok"), r.describe());
        assertTrue(r.stdout().contains("native available=false") && r.stdout().contains("native access"), r.describe());
    }
}
