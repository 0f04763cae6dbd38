package io.kvslab;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * The current thread's allocated-bytes counter ({@code com.sun.management.ThreadMXBean
 * .getCurrentThreadAllocatedBytes()}), bound reflectively (the tests compile as part of the library module, which
 * does not read java.management) and read without boxing, for the hot-path allocation tests.
 */
final class ThreadAllocation {
    private final MethodHandle counter;
    private final Object bean;

    ThreadAllocation() throws ReflectiveOperationException {
        Class<?> type = Class.forName("com.sun.management.ThreadMXBean");
        counter = MethodHandles.publicLookup().findVirtual(type, "getCurrentThreadAllocatedBytes",
                MethodType.methodType(long.class)).asType(MethodType.methodType(long.class, Object.class));
        bean = Class.forName("java.lang.management.ManagementFactory").getMethod("getThreadMXBean").invoke(null);
    }

    /** Bytes this thread has allocated so far. */
    long bytes() throws Throwable {
        return (long) counter.invokeExact(bean);
    }
}
