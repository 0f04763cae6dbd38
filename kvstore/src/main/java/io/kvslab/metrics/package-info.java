/**
 * Observability for KVSlab: metrics snapshot records ({@link io.kvslab.metrics.StoreMetrics},
 * {@link io.kvslab.metrics.SequenceMetrics}) and JDK Flight Recorder event types.
 *
 * <p>A leaf package: it depends on nothing but {@code jdk.jfr}, so that {@code io.kvslab.memory} and
 * {@code io.kvslab.cache} can both emit events. All events are in the JFR category "KVSlab" and are named
 * {@code io.kvslab.*}; record them with {@code -XX:StartFlightRecording} and read them with
 * {@code jfr print --events io.kvslab.Compression recording.jfr} (see docs/observability.md).
 */
package io.kvslab.metrics;
