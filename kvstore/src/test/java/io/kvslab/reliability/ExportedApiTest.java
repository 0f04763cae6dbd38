package io.kvslab.reliability;

import io.kvslab.Sequence;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.lang.module.ModuleDescriptor;
import java.lang.reflect.Constructor;
import java.lang.reflect.Executable;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The exported packages hold the types an embedder needs and nothing else (issue 10): the list of public top-level
 * types is pinned here, so adding one is a deliberate change to this list and to docs/architecture.md's table; and
 * no public member of an exported type names a type an embedder cannot use (package-private or internal).
 */
class ExportedApiTest {
    private static final Set<String> EXPORTED_PACKAGES = Set.of("io.kvslab", "io.kvslab.policy", "io.kvslab.pod",
            "io.kvslab.snapshot", "io.kvslab.metrics", "io.kvslab.tier");

    /** Keep in step with the table in docs/architecture.md. */
    private static final Set<String> EXPECTED = new TreeSet<>(List.of(
            // io.kvslab (22; AllocatorStats folded into StoreStats, MemoryPressureHandler is a Predicate<MemoryPressure>,
            // RopeRotation internal: shiftPositions takes theta and rotaryDims)
            "io.kvslab.Attention", "io.kvslab.ClosedException",
            "io.kvslab.CompactionResult", "io.kvslab.ConcurrentUseException", "io.kvslab.DType",
            "io.kvslab.KvArgumentException", "io.kvslab.KvCacheManager", "io.kvslab.KvCacheUsage",
            "io.kvslab.KvLayout", "io.kvslab.KvSlabException", "io.kvslab.KvStore", "io.kvslab.KvTensor",
            "io.kvslab.LayerView", "io.kvslab.LeakedBlocksException", "io.kvslab.MemoryLimitExceededException",
            "io.kvslab.MemoryPressure", "io.kvslab.PrefixCache",
            "io.kvslab.PrefixCacheStats", "io.kvslab.PrefixMatch", "io.kvslab.Sequence",
            "io.kvslab.StoreConfig", "io.kvslab.StoreStats",
            // io.kvslab.policy (15; PolicyException folded into KvArgumentException; the layer rule, head allocation
            // and selector steps and RowCounts package-private: composed through CompressionPolicy's with... methods,
            // Scorer the one step a caller implements; PressurePolicy moved to the bench's serving scheduler;
            // WindowQueries and OutputProjection folded into the per-layer LayerInputs; PolicyWorkspace package-private,
            // its public face is the Compressor that owns it; SequenceContext package-private: select takes the list of
            // LayerContexts it checks)
            "io.kvslab.policy.Budget", "io.kvslab.policy.CompressionPolicy", "io.kvslab.policy.CompressionResult",
            "io.kvslab.policy.Compressor", "io.kvslab.policy.DecodingCompression",
            "io.kvslab.policy.HeadSnapshot", "io.kvslab.policy.LayerContext",
            "io.kvslab.policy.LayerInputs", "io.kvslab.policy.Policies",
            "io.kvslab.policy.Protection", "io.kvslab.policy.RecentQueries",
            "io.kvslab.policy.Scorer", "io.kvslab.policy.Selection",
            "io.kvslab.policy.ValueNorm", "io.kvslab.policy.WindowPooling",
            // io.kvslab.pod (8; its exceptions folded into KvArgumentException; PodAttention package-private)
            "io.kvslab.pod.DenseDecode", "io.kvslab.pod.LayerGrouping", "io.kvslab.pod.LayerSimilarity",
            "io.kvslab.pod.ModelFingerprint", "io.kvslab.pod.PodConfig",
            "io.kvslab.pod.PodDecoder", "io.kvslab.pod.PodSharing", "io.kvslab.pod.PodVariant",
            // io.kvslab.snapshot (4; one SnapshotException whose reason() says corrupt, version, layout, ...)
            "io.kvslab.snapshot.RestoredSequence", "io.kvslab.snapshot.SnapshotException",
            "io.kvslab.snapshot.SnapshotInfo", "io.kvslab.snapshot.Snapshots",
            // io.kvslab.metrics (2; the JFR event classes are in internal.jfr, selected by event name)
            "io.kvslab.metrics.SequenceMetrics", "io.kvslab.metrics.StoreMetrics",
            // io.kvslab.tier (10; TierWriteException is TierRecordException with reason DECLINED)
            "io.kvslab.tier.BlockKey", "io.kvslab.tier.BlockTier", "io.kvslab.tier.DiskTier",
            "io.kvslab.tier.PrefixTier", "io.kvslab.tier.PrefixTierStats", "io.kvslab.tier.RedisTier",
            "io.kvslab.tier.RedisTierConfig", "io.kvslab.tier.SwappedSequence", "io.kvslab.tier.TierRecordException",
            "io.kvslab.tier.TierStats"));

    /**
     * Public types nested in public types count too (an embedder sees them like top-level ones); binary names.
     * Keep in step with docs/architecture.md.
     */
    private static final Set<String> EXPECTED_NESTED = new TreeSet<>(List.of(
            "io.kvslab.Attention$QueryPrecision", "io.kvslab.KvStore$ReadAccess",
            // Budget's kinds are package-private records; PressurePolicy's are in the bench with it
            "io.kvslab.snapshot.SnapshotException$Reason",
            "io.kvslab.tier.PrefixTier$Fetched", "io.kvslab.tier.TierRecordException$Reason"));

    @Test
    void nestedPublicTypesOfTheExportedPackagesAreTheListedOnes() throws Exception {
        Set<String> actual = new TreeSet<>();
        for (Class<?> c : PublicSurfaceTest.kvstoreClasses()) {
            if (c.getEnclosingClass() != null && !c.isAnonymousClass() && !c.isLocalClass()
                    && EXPORTED_PACKAGES.contains(c.getPackageName()) && PublicSurfaceTest.reachable(c)) {
                actual.add(c.getName());
            }
        }
        assertEquals(5, EXPECTED_NESTED.size(), "the pinned list itself");
        assertEquals(EXPECTED_NESTED, actual, "public nested types of the exported packages");
        assertEquals(66, EXPECTED.size() + EXPECTED_NESTED.size(), "docs/architecture.md states 61 + 5 = 66");
    }

    @Test
    void exportedPackagesHoldExactlyTheListedPublicTypes() throws Exception {
        Set<String> actual = new TreeSet<>();
        for (Class<?> c : PublicSurfaceTest.kvstoreClasses()) {
            if (c.getEnclosingClass() == null && Modifier.isPublic(c.getModifiers())
                    && EXPORTED_PACKAGES.contains(c.getPackageName())) {
                actual.add(c.getName());
            }
        }
        assertEquals(61, EXPECTED.size(), "the pinned list itself");
        assertEquals(EXPECTED, actual, "public top-level types of the exported packages");
    }

    @Test
    void moduleExportsTheApiPackagesAndTheJfrEventsOnlyToFlightRecorder() throws Exception {
        Path root = Path.of(Sequence.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        ModuleDescriptor module;
        try (InputStream in = Files.newInputStream(root.resolve("module-info.class"))) {
            module = ModuleDescriptor.read(in);
        }
        Set<String> open = new TreeSet<>();
        Map<String, Set<String>> qualified = new TreeMap<>();
        for (ModuleDescriptor.Exports e : module.exports()) {
            if (e.isQualified()) {
                qualified.put(e.source(), e.targets());
            } else {
                open.add(e.source());
            }
        }
        assertEquals(new TreeSet<>(EXPORTED_PACKAGES), open, "unqualified exports");
        // Flight Recorder reads the event classes' fields; an embedder selects the events by name.
        assertEquals(Map.of("io.kvslab.internal.jfr", Set.of("jdk.jfr")), qualified, "qualified exports");
    }

    @Test
    void noPublicMemberOfAnExportedTypeNamesAnInternalOrHiddenType() throws Exception {
        Set<String> offenders = new TreeSet<>();
        for (Class<?> c : PublicSurfaceTest.kvstoreClasses()) {
            if (!PublicSurfaceTest.reachable(c) || !EXPORTED_PACKAGES.contains(c.getPackageName())) {
                continue;
            }
            List<Executable> members = new ArrayList<>();
            for (Method m : c.getDeclaredMethods()) {
                if (Modifier.isPublic(m.getModifiers()) && !m.isSynthetic()) {
                    members.add(m);
                }
            }
            for (Constructor<?> k : c.getDeclaredConstructors()) {
                if (Modifier.isPublic(k.getModifiers())) {
                    members.add(k);
                }
            }
            for (Executable e : members) {
                List<Class<?>> types = new ArrayList<>(List.of(e.getParameterTypes()));
                if (e instanceof Method m) {
                    types.add(m.getReturnType());
                }
                for (Class<?> t : types) {
                    Class<?> base = t;
                    while (base.isArray()) {
                        base = base.componentType();
                    }
                    if (base.getPackageName().startsWith("io.kvslab")
                            && (!PublicSurfaceTest.reachable(base) || !EXPORTED_PACKAGES.contains(base.getPackageName()))) {
                        offenders.add(c.getName() + "." + e.getName() + ": " + base.getName());
                    }
                }
            }
        }
        assertEquals(Set.of(), offenders, "exported members naming types an embedder cannot use");
    }
}
