package io.kvslab.internal.ffm;

/**
 * Main of a forked JVM: asks twice whether the native library is available (the second answer must come from the
 * first attempt, logging nothing more), prints the outcome, and with argument {@code wait} then sleeps until killed.
 */
public final class NativeLibraryProbe {
    public static void main(String[] args) throws Exception {
        boolean available = NativeLibrary.isAvailable();
        boolean again = NativeLibrary.isAvailable();
        System.out.println("available=" + available + " again=" + again);
        System.out.println("reason=" + NativeLibrary.unavailableReason());
        if (available) {
            System.out.println("dir=" + NativeLibrary.directory());
            System.out.println("poolThreads=" + KernelDowncalls.poolThreads());
        }
        System.out.flush();
        if (args.length > 0 && args[0].equals("wait")) {
            Thread.sleep(600_000);
        }
    }
}
