package io.kvslab.tier;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real Redis Cluster for tests: {@code masters} {@code redis-server} processes in cluster mode on free loopback
 * ports (no replicas, persistence off), the 16384 hash slots split evenly between them, joined with
 * {@code CLUSTER MEET}: what {@code redis-cli --cluster create ... --cluster-yes} does, done over RESP so the test
 * needs nothing but {@code redis-server}. Fails the test (never skips) when {@code redis-server} is missing or older
 * than 7 (the cluster bus port is set with {@code --cluster-port}, new in 7, so that a free port + 10000 past 65535
 * cannot break the start). Stops and deletes every node on close.
 *
 * <p>{@code cluster-require-full-coverage no}: with a master down its slots are unavailable but the other masters
 * keep serving theirs (what docs/distributed.md recommends for a cache: a lost node costs its share of blocks, not
 * the whole tier).
 */
public final class RedisCluster implements AutoCloseable {
    public static final int SLOTS = 16384;
    private final List<RedisServer> nodes;
    private final List<Integer> busPorts;
    private List<List<Long>> slotMap;

    private RedisCluster(List<RedisServer> nodes, List<Integer> busPorts) {
        this.nodes = nodes;
        this.busPorts = busPorts;
    }

    /** Starts {@code masters} nodes, assigns the slots, waits (up to 60 s) until every node reports the cluster ok. */
    public static RedisCluster start(int masters) {
        List<RedisServer> nodes = new ArrayList<>();
        List<Integer> busPorts = new ArrayList<>();
        try {
            for (int i = 0; i < masters; i++) {
                int bus = freePort();
                nodes.add(RedisServer.start("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                        "--cluster-node-timeout", "5000", "--cluster-port", Integer.toString(bus),
                        "--cluster-require-full-coverage", "no"));
                busPorts.add(bus);
            }
            RedisCluster c = new RedisCluster(nodes, busPorts);
            c.form();
            return c;
        } catch (RuntimeException | Error e) {
            for (RedisServer n : nodes) {
                n.close();
            }
            throw e;
        }
    }

    private void form() {
        int n = nodes.size();
        for (int i = 0; i < n; i++) {
            int lo = (int) ((long) SLOTS * i / n);
            int hi = (int) ((long) SLOTS * (i + 1) / n) - 1;
            nodes.get(i).command("CLUSTER", "ADDSLOTSRANGE", lo, hi);
        }
        for (int i = 1; i < n; i++) {
            // the bus port too: MEET assumes port + 10000 otherwise
            nodes.get(0).command("CLUSTER", "MEET", "127.0.0.1", nodes.get(i).port(), busPorts.get(i));
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!formed()) {
            if (System.nanoTime() > deadline) {
                StringBuilder state = new StringBuilder();
                for (RedisServer r : nodes) {
                    state.append(r.port()).append(": ").append(clusterInfo(r)).append('\n');
                }
                throw new AssertionError("the Redis Cluster did not form within 60 s:\n" + state);
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
        slotMap = slotOwners(nodes.get(0));
    }

    /** Every node: state ok, all slots assigned, every node known, and the same slot map (CLUSTER SLOTS). */
    private boolean formed() {
        Object first = null;
        for (RedisServer r : nodes) {
            String info = clusterInfo(r);
            if (!info.contains("cluster_state:ok") || !info.contains("cluster_slots_assigned:" + SLOTS)
                    || !info.contains("cluster_known_nodes:" + nodes.size())) {
                return false;
            }
            Object slots = slotOwners(r);
            if (first == null) {
                first = slots;
            } else if (!first.equals(slots)) {
                return false;
            }
        }
        return true;
    }

    /** {@code [lo, hi, port]} per slot range, sorted: the slot map as {@code r} sees it. */
    @SuppressWarnings("unchecked")
    private static List<List<Long>> slotOwners(RedisServer r) {
        List<List<Long>> out = new ArrayList<>();
        for (Object range : (List<Object>) r.command("CLUSTER", "SLOTS")) {
            List<Object> e = (List<Object>) range;
            List<Object> master = (List<Object>) e.get(2);
            out.add(List.of((Long) e.get(0), (Long) e.get(1), (Long) master.get(1)));
        }
        out.sort((a, b) -> Long.compare(a.get(0), b.get(0)));
        return out;
    }

    private static String clusterInfo(RedisServer r) {
        Object o = r.command("CLUSTER", "INFO");
        return o instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : String.valueOf(o);
    }

    public List<RedisServer> nodes() {
        return nodes;
    }

    /** {@code redis-cluster://127.0.0.1:P1,127.0.0.1:P2,...} with every node as a seed. */
    public String uri() {
        StringBuilder b = new StringBuilder("redis-cluster://");
        for (int i = 0; i < nodes.size(); i++) {
            b.append(i == 0 ? "" : ",").append("127.0.0.1:").append(nodes.get(i).port());
        }
        return b.toString();
    }

    /**
     * The node whose slots include {@code key}'s: the slot is CRC16 (XMODEM) of the key mod 16384 (the key has no
     * hash tag), the owner read from the slot map the cluster reported when it formed. Needs no node to answer (one
     * may be paused); {@code twoReplicasShare...} checks it against where the keys actually are.
     */
    public RedisServer nodeOf(String key) {
        int slot = crc16(key.getBytes(StandardCharsets.UTF_8)) % SLOTS;
        for (List<Long> range : slotMap) {
            if (slot >= range.get(0) && slot <= range.get(1)) {
                for (RedisServer r : nodes) {
                    if (r.port() == range.get(2)) {
                        return r;
                    }
                }
            }
        }
        throw new AssertionError("no node owns slot " + slot);
    }

    /** CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), the hash Redis Cluster maps keys to slots with. */
    static int crc16(byte[] b) {
        int crc = 0;
        for (byte x : b) {
            crc ^= (x & 0xff) << 8;
            for (int i = 0; i < 8; i++) {
                crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1;
            }
            crc &= 0xffff;
        }
        return crc;
    }

    /** The keys every node holds (KEYS on each: fine for a test cluster). */
    public List<List<String>> keysPerNode(String pattern) {
        List<List<String>> out = new ArrayList<>();
        for (RedisServer r : nodes) {
            out.add(r.keys(pattern));
        }
        return out;
    }

    /** FLUSHALL on every master. */
    public void flushAll() {
        for (RedisServer r : nodes) {
            r.command("FLUSHALL");
        }
    }

    @Override
    public void close() {
        for (RedisServer r : nodes) {
            r.close();
        }
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException("no free loopback port", e);
        }
    }
}
