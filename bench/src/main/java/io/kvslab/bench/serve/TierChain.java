package io.kvslab.bench.serve;

import io.kvslab.tier.BlockKey;
import io.kvslab.tier.BlockTier;
import io.kvslab.tier.TierStats;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A local disk tier in front of a remote one: reads try the disk first and copy what only the remote had to the
 * disk (so cold blocks are read back locally next time); writes go to both. The disk's cap evicts; the remote's
 * own policy evicts there. Values pass through unread: the prefix tier verifies every one.
 */
final class TierChain implements BlockTier {
    private final BlockTier near;
    private final BlockTier far;

    TierChain(BlockTier near, BlockTier far) {
        this.near = near;
        this.far = far;
    }

    @Override
    public String name() {
        return near.name() + "+" + far.name();
    }

    @Override
    public boolean put(BlockKey key, byte[] record) {
        boolean a = near.put(key, record);
        boolean b = far.put(key, record);
        return a || b;
    }

    @Override
    public Optional<byte[]> get(BlockKey key) {
        return getAll(List.of(key)).get(0);
    }

    @Override
    public List<Optional<byte[]>> getAll(List<BlockKey> keys) {
        List<Optional<byte[]>> out = new ArrayList<>(near.getAll(keys));
        List<BlockKey> missing = new ArrayList<>();
        List<Integer> where = new ArrayList<>();
        for (int i = 0; i < keys.size(); i++) {
            if (out.get(i).isEmpty()) {
                missing.add(keys.get(i));
                where.add(i);
            }
        }
        if (!missing.isEmpty()) {
            List<Optional<byte[]>> got = far.getAll(missing);
            for (int i = 0; i < missing.size(); i++) {
                Optional<byte[]> v = got.get(i);
                out.set(where.get(i), v);
                if (v.isPresent()) {
                    near.put(missing.get(i), v.get());   // promote: read back from disk next time
                }
            }
        }
        return out;
    }

    @Override
    public boolean remove(BlockKey key) {
        boolean a = near.remove(key);
        boolean b = far.remove(key);
        return a || b;
    }

    /** The far tier's counters (the one that crosses the network); {@link #near()} has the disk's. */
    @Override
    public TierStats stats() {
        return far.stats();
    }

    BlockTier near() {
        return near;
    }

    BlockTier far() {
        return far;
    }

    @Override
    public void close() {
        try {
            near.close();
        } finally {
            far.close();
        }
    }
}
