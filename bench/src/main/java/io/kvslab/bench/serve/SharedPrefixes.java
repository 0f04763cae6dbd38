package io.kvslab.bench.serve;

import io.kvslab.KvStore;
import io.kvslab.PrefixCache;
import io.kvslab.PrefixMatch;
import io.kvslab.Sequence;
import io.kvslab.bench.eval.pod.PodCalibration;
import io.kvslab.bench.model.LoadedModel;
import io.kvslab.tier.BlockTier;
import io.kvslab.tier.DiskTier;
import io.kvslab.tier.PrefixTier;
import io.kvslab.tier.PrefixTierStats;
import io.kvslab.tier.RedisTier;
import io.kvslab.tier.RedisTierConfig;
import io.kvslab.tier.TierStats;

import java.util.Arrays;

/**
 * The server's prefix blocks below native memory ({@code --remote-tier}, {@code --disk-tier}): a {@link PrefixTier}
 * over Redis, a disk tier, or the disk in front of Redis. Admission looks prompts up through it (local prefix cache,
 * then the tier); a finished prefill inserts the prompt locally and publishes its full blocks (write-behind), and so
 * does every decode step that fills a block of prompt and generated tokens. Used by
 * the scheduler thread only, apart from the counters.
 */
final class SharedPrefixes implements AutoCloseable {
    private final BlockTier tier;
    private final RedisTier redis;
    private final PrefixCache local;
    private final PrefixTier prefix;

    private SharedPrefixes(BlockTier tier, RedisTier redis, PrefixCache local, PrefixTier prefix) {
        this.tier = tier;
        this.redis = redis;
        this.local = local;
        this.prefix = prefix;
    }

    /** Opens the tiers {@code options} name for {@code store}, whose local prefix cache is {@code local}. */
    static SharedPrefixes open(TierOptions options, KvStore store, PrefixCache local, String modelId) {
        RedisTier redis = null;
        DiskTier disk = null;
        try {
            if (options.redisUri() != null) {
                redis = RedisTier.connect(RedisTierConfig.of(options.redisUri()).withTimeout(options.timeout()));
            }
            if (options.diskDir() != null) {
                disk = DiskTier.open(options.diskDir(), options.diskCap());
            }
            BlockTier tier = redis != null && disk != null ? new TierChain(disk, redis) : redis != null ? redis : disk;
            PrefixTier prefix = PrefixTier.create(store, local, tier, modelId, options.queue());
            return new SharedPrefixes(tier, redis, local, prefix);
        } catch (RuntimeException e) {
            if (redis != null) {
                redis.close();
            }
            if (disk != null) {
                disk.close();
            }
            throw e;
        }
    }

    /**
     * The model id salting every block key: PoD's weights fingerprint (geometry, embedding, attention projections,
     * classifier) plus a SHA-256 over every weight the forward pass reads (FFN and norms included), so that two
     * models differing anywhere that shapes K or V never share a block.
     */
    static String modelId(LoadedModel m) {
        String attention = PodCalibration.fingerprint(m.model()).modelId();
        return attention + ":all-" + m.model().weights().digest();
    }

    /** What the tier's prefix cache uses as salt (the scheduler's local lookups and inserts must use it too). */
    long localSalt() {
        return prefix.localSalt();
    }

    /** The tokens whose blocks a prompt can reuse: all but the last (that one must run for its logits). */
    private static int[] reusable(int[] prompt) {
        return Arrays.copyOf(prompt, prompt.length - 1);
    }

    /** Full blocks of {@code prompt} (but its last token) the local cache holds now. */
    int localBlocks(int[] prompt) {
        return prompt.length <= 1 ? 0 : prefix.localBlocks(reusable(prompt));
    }

    /**
     * Fetches and verifies {@code prompt}'s blocks from {@code fromBlock} on from the tier (any thread; within the
     * tier's timeout). Nothing is allocated in the store: {@link #attach} appends them at admission.
     */
    PrefixTier.Fetched fetch(int[] prompt, int fromBlock) {
        return prefix.fetch(reusable(prompt), fromBlock);
    }

    /** The local cache's match for {@code prompt} (but its last token): a new sequence sharing the cached blocks. */
    PrefixMatch local(KvStore store, int[] prompt) {
        if (prompt.length <= 1) {
            return new PrefixMatch(store.newSequence(), 0);
        }
        return prefix.local(reusable(prompt));
    }

    /** Appends the fetched blocks continuing {@code match} to its sequence (room reserved by the caller before). */
    PrefixMatch attach(PrefixMatch match, PrefixTier.Fetched fetched, int[] prompt) {
        if (prompt.length <= 1) {
            return match;
        }
        return prefix.attach(match, fetched, reusable(prompt));
    }

    /** A prompt's prefill finished: cache its full blocks locally and queue them for the tier. */
    void prefilled(Sequence s, int[] prompt) {
        local.insert(s, prompt, prefix.localSalt());
        prefix.publish(s, prompt);
    }

    /**
     * Decoding filled a block of {@code s}, which holds {@code tokens} (prompt and generated tokens fed so far):
     * queue its full blocks not yet in the tier (write-behind; blocks known to be there are skipped, blocks that
     * are not exactly a fresh prefill's are never published: {@link PrefixTier#publish}).
     */
    void decoded(Sequence s, int[] tokens) {
        prefix.publish(s, tokens);
    }

    PrefixTierStats stats() {
        return prefix.stats();
    }

    /** Waits until queued blocks were written (tests). */
    boolean flush(long millis) throws InterruptedException {
        return prefix.flush(millis);
    }

    /** Prometheus lines for /metrics. */
    void render(StringBuilder o) {
        PrefixTierStats p = prefix.stats();
        TierStats t = tier.stats();
        String name = tier.name();
        o.append("# HELP kvslab_tier_prefix_blocks_total Prompt token blocks by where a lookup found them.\n"
                + "# TYPE kvslab_tier_prefix_blocks_total counter\n");
        o.append("kvslab_tier_prefix_blocks_total{source=\"local\"} ").append(p.localBlocks()).append('\n');
        o.append("kvslab_tier_prefix_blocks_total{source=\"tier\"} ").append(p.fetchedBlocks()).append('\n');
        o.append("kvslab_tier_prefix_blocks_total{source=\"none\"} ").append(p.missedBlocks()).append('\n');
        counter(o, "kvslab_tier_rejected_blocks_total", "Tier values that failed a check (ignored, recomputed).",
                p.rejectedBlocks());
        o.append("# HELP kvslab_tier_publish_blocks_total Prefix blocks by what write-behind did with them.\n"
                + "# TYPE kvslab_tier_publish_blocks_total counter\n");
        o.append("kvslab_tier_publish_blocks_total{outcome=\"queued\"} ").append(p.queuedBlocks()).append('\n');
        o.append("kvslab_tier_publish_blocks_total{outcome=\"stored\"} ").append(p.publishedBlocks()).append('\n');
        o.append("kvslab_tier_publish_blocks_total{outcome=\"failed\"} ").append(p.publishFailures()).append('\n');
        o.append("kvslab_tier_publish_blocks_total{outcome=\"dropped\"} ").append(p.droppedBlocks()).append('\n');
        o.append("# HELP kvslab_tier_queue_blocks Prefix blocks waiting in the write-behind queue.\n"
                + "# TYPE kvslab_tier_queue_blocks gauge\nkvslab_tier_queue_blocks ").append(p.queueDepth()).append('\n');
        o.append("# HELP kvslab_tier_calls_total Calls to the tier by outcome.\n# TYPE kvslab_tier_calls_total counter\n");
        String l = "{tier=\"" + name + "\",";
        o.append("kvslab_tier_calls_total").append(l).append("op=\"get\",outcome=\"hit\"} ").append(t.hits()).append('\n');
        o.append("kvslab_tier_calls_total").append(l).append("op=\"get\",outcome=\"miss\"} ").append(t.misses()).append('\n');
        o.append("kvslab_tier_calls_total").append(l).append("op=\"get\",outcome=\"failed\"} ").append(t.getFailures()).append('\n');
        o.append("kvslab_tier_calls_total").append(l).append("op=\"put\",outcome=\"ok\"} ").append(t.puts()).append('\n');
        o.append("kvslab_tier_calls_total").append(l).append("op=\"put\",outcome=\"failed\"} ").append(t.putFailures()).append('\n');
        o.append("# HELP kvslab_tier_bytes_total Value bytes moved to and from the tier.\n# TYPE kvslab_tier_bytes_total counter\n");
        o.append("kvslab_tier_bytes_total").append(l).append("direction=\"read\"} ").append(t.bytesRead()).append('\n');
        o.append("kvslab_tier_bytes_total").append(l).append("direction=\"written\"} ").append(t.bytesWritten()).append('\n');
        if (redis != null) {
            o.append("# HELP kvslab_tier_redis_connected Whether the Redis tier has a live connection.\n"
                    + "# TYPE kvslab_tier_redis_connected gauge\nkvslab_tier_redis_connected ")
                    .append(redis.connected() ? 1 : 0).append('\n');
        }
    }

    private static void counter(StringBuilder o, String name, String help, long v) {
        o.append("# HELP ").append(name).append(' ').append(help).append('\n');
        o.append("# TYPE ").append(name).append(" counter\n").append(name).append(' ').append(v).append('\n');
    }

    @Override
    public void close() {
        try {
            prefix.close();
        } finally {
            tier.close();
        }
    }

}
