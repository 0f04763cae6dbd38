package io.kvslab.tier;

import io.kvslab.KvArgumentException;
import io.kvslab.KvLayout;
import io.kvslab.KvSlabException;
import io.kvslab.KvStore;
import io.kvslab.KvTensor;
import io.kvslab.PrefixCache;
import io.kvslab.PrefixMatch;
import io.kvslab.Sequence;
import io.kvslab.ClosedException;
import io.kvslab.internal.jfr.Jfr;
import io.kvslab.internal.table.TableAccess;
import io.kvslab.internal.tier.BlockRecord;
import io.kvslab.internal.tier.BlockRecords;
import io.kvslab.internal.tier.PrefixBlockValue;
import io.kvslab.internal.tier.PrefixKeys;
import io.kvslab.internal.tier.VerifiedRecord;
import io.kvslab.internal.jfr.TierEvent;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * Prefix blocks shared through a {@link BlockTier} (a Redis server, a disk directory) by every process that runs the
 * same model on the same store layout: a second replica serving a prompt the first one prefilled fetches its KV
 * blocks instead of recomputing them.
 *
 * <p><b>Names.</b> Token block i of a prompt is named by a 128-bit content address chained over the blocks before
 * it and salted with the model id and the store layout (docs/distributed.md, "Key layout"). Each value carries the
 * block's tokens and parent key besides the block record (format version, layout fingerprint, positions, CRC32C),
 * and every check must pass before a row is used: a value that fails one is ignored and counted
 * ({@link PrefixTierStats#rejectedBlocks()}), the block is recomputed.
 *
 * <p><b>Publishing</b> ({@link #publish}): only full blocks that are exactly what a fresh prefill of their tokens
 * stores are published: rows at positions equal to their index, appended and never compressed, evicted, shifted,
 * re-rotated or PoD-aliased since. The caller's thread copies the block's rows and queues them (bounded; when full
 * the block is dropped and counted, never waited for); one writer thread encodes and stores them
 * (write-behind). Blocks already known to be in the tier are not sent again.
 *
 * <p><b>Reading</b> ({@link #lookup}): the local {@link PrefixCache} first; the blocks after its match are fetched
 * from the tier in one batch, verified in order, and appended to the match up to the first block that is missing
 * or fails a check; the result goes into the local cache too. A tier that is down or slow costs at most its
 * timeout, then the lookup returns what the local cache had.
 *
 * <p>Thread-safe. Close it before the store and the local cache: close drains nothing, it drops queued blocks.
 */
public final class PrefixTier implements AutoCloseable {
    /** Keys remembered as present in the tier (published or fetched), so they are not sent again. */
    private static final int KNOWN_KEYS = 1 << 16;

    private final KvStore store;
    private final PrefixCache local;
    private final BlockTier tier;
    private final KvLayout layout;
    private final PrefixKeys keys;
    private final int tokensPerBlock;
    private final int columnBytes;
    private final ArrayBlockingQueue<Pending> queue;
    private final Set<BlockKey> known = Collections.newSetFromMap(new LinkedHashMap<>(1024, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<BlockKey, Boolean> eldest) {
            return size() > KNOWN_KEYS;
        }
    });
    private final Thread writer;
    private final LongAdder lookups = new LongAdder();
    private final LongAdder localBlocks = new LongAdder();
    private final LongAdder fetchedBlocks = new LongAdder();
    private final LongAdder missedBlocks = new LongAdder();
    private final LongAdder rejectedBlocks = new LongAdder();
    private final LongAdder fetchFailures = new LongAdder();
    private final LongAdder queuedBlocks = new LongAdder();
    private final LongAdder publishedBlocks = new LongAdder();
    private final LongAdder publishFailures = new LongAdder();
    private final LongAdder droppedBlocks = new LongAdder();
    private final LongAdder bytesFetched = new LongAdder();
    private final LongAdder bytesPublished = new LongAdder();
    private final Object idle = new Object();
    private int inFlight;
    private volatile boolean closed;

    /** One block waiting to be written: its key, parent, tokens and raw rows (all tables, K then V). */
    private record Pending(BlockKey key, BlockKey parent, int[] tokens, long firstPosition, byte[] rows) {}

    private PrefixTier(KvStore store, PrefixCache local, BlockTier tier, String modelId, int queueCapacity) {
        this.store = store;
        this.local = local;
        this.tier = tier;
        this.layout = store.layout();
        this.keys = new PrefixKeys(modelId, layout);
        this.tokensPerBlock = layout.tokensPerBlock();
        this.columnBytes = Math.toIntExact(BlockRecords.rowsBytes(layout, BlockRecord.Kind.KEYS_AND_VALUES, true,
                tokensPerBlock));
        this.queue = new ArrayBlockingQueue<>(queueCapacity);
        this.writer = Thread.ofPlatform().daemon().name("kvslab-prefix-writer-" + tier.name()).unstarted(this::drain);
    }

    /**
     * A prefix tier for {@code store}, whose prompts' blocks are cached locally in {@code local} (a cache of the
     * same store) and shared through {@code tier}.
     *
     * @param modelId       identifies the model's weights (for example a hash of the weights file); processes share
     *                      blocks only when model id and store layout are equal
     * @param queueCapacity blocks the write-behind queue holds at most (each holds a copy of its rows)
     * @param store the open store whose sequences the tier serves
     * @param local a prefix cache of {@code store}
     * @param tier the shared tier (Redis, a directory) the blocks are published to and fetched from
     * @return a new prefix tier with a running writer thread; close it when done
     * @throws KvArgumentException if an argument is null or blank, or the capacity is not in [1, 65536]
     */
    public static PrefixTier create(KvStore store, PrefixCache local, BlockTier tier, String modelId,
                                    int queueCapacity) {
        if (store == null || local == null || tier == null) {
            throw new KvArgumentException("store, local cache and tier must not be null");
        }
        if (modelId == null || modelId.isBlank()) {
            throw new KvArgumentException("the model id must be a non-blank string (it salts every block key)");
        }
        if (queueCapacity < 1 || queueCapacity > 65536) {
            throw new KvArgumentException("the write-behind queue capacity must be in [1, 65536], got "
                    + queueCapacity);
        }
        if (local.tokensPerBlock() != store.layout().tokensPerBlock()) {
            throw new KvArgumentException("the local prefix cache belongs to a store with another layout");
        }
        KvLayout sl = store.layout();
        if (!sl.uniformDtype() || sl.keyDtype().isQuantized()) {
            // Fetched blocks are appended through KvTensor, which carries f32/f16/bf16 elements of one type only.
            throw new KvArgumentException("a prefix tier needs an f32, f16 or bf16 store with K and V of one type; "
                    + sl.dtypeName() + " stores cannot publish or fetch prefix blocks yet");
        }
        PrefixTier p = new PrefixTier(store, local, tier, modelId, queueCapacity);
        p.writer.start();
        return p;
    }

    /**
     * The salt the local cache is used with (lookups through this tier use it; so may the caller's own).
     *
     * @return the salt
     */
    public long localSalt() {
        return keys.localSalt();
    }

    /**
     * The content addresses of the full token blocks of {@code tokens}.
     *
     * @param tokens the prompt's token ids
     * @return one key per full token block, in order
     */
    public List<BlockKey> blockKeys(int[] tokens) {
        if (tokens == null) {
            throw new KvArgumentException("tokens must not be null");
        }
        return List.of(keys.keys(tokens));
    }

    /**
     * The shared tier this prefix tier publishes to and fetches from.
     *
     * @return the tier given to {@link #create}
     */
    public BlockTier tier() {
        return tier;
    }

    /**
     * A new sequence holding the longest prefix of {@code tokens} found locally or in the tier (whole token blocks
     * from position 0), as {@link PrefixCache#lookup}: the caller prefills the rest and closes the sequence. To keep
     * at least one token to compute (for its logits), look up {@code tokens} without its last token. Equal to
     * {@link #local} followed by {@link #attach} of {@link #fetch}.
     *
     * @param tokens the prompt's token ids
     * @return the match: a new sequence (possibly empty) and the number of tokens it covers
     */
    public PrefixMatch lookup(int[] tokens) {
        checkOpen();
        if (tokens == null) {
            throw new KvArgumentException("tokens must not be null");
        }
        PrefixMatch match = local(tokens);
        if (match.matchedTokens() / tokensPerBlock == tokens.length / tokensPerBlock) {
            return attach(match, Fetched.NONE, tokens);
        }
        Fetched f = fetch(tokens, match.matchedTokens() / tokensPerBlock);
        return attach(match, f, tokens);
    }

    /**
     * The local cache's match for {@code tokens} (salted as this tier's blocks): a new sequence sharing the cached
     * blocks. A scheduler reserves room for the rest of the prompt on it, then {@link #attach}es what
     * {@link #fetch} brought.
     *
     * @param tokens the prompt's token ids
     * @return the match: a new sequence (possibly empty) and the number of tokens it covers; the caller closes it
     * @throws KvArgumentException if {@code tokens} is null
     */
    public PrefixMatch local(int[] tokens) {
        checkOpen();
        if (tokens == null) {
            throw new KvArgumentException("tokens must not be null");
        }
        return local.lookup(tokens, keys.localSalt());
    }

    /**
     * Blocks of {@code tokens} the local cache holds now, from position 0 (no sequence is left open).
     *
     * @param tokens the prompt's token ids
     * @return full token blocks matched locally, {@code >= 0}
     * @throws KvArgumentException if {@code tokens} is null
     */
    public int localBlocks(int[] tokens) {
        PrefixMatch m = local(tokens);
        m.sequence().close();
        return m.matchedTokens() / tokensPerBlock;
    }

    /**
     * Verified blocks of a prompt fetched from the tier and not yet in any sequence: {@link #blocks()} records from
     * token block {@link #firstBlock()} on (contiguous; empty on a miss). Plain heap data: dropping it frees
     * nothing native.
     */
    public static final class Fetched {
        static final Fetched NONE = new Fetched(0, List.of(), 0, 0, 0);
        private final int first;
        private final List<VerifiedRecord> records;
        private final long bytes;
        private final int wanted;
        private final long nanos;

        private Fetched(int first, List<VerifiedRecord> records, long bytes, int wanted, long nanos) {
            this.first = first;
            this.records = records;
            this.bytes = bytes;
            this.wanted = wanted;
            this.nanos = nanos;
        }

        /**
         * Nothing fetched (a miss, or a fetch that could not run).
         *
         * @return the empty fetch
         */
        public static Fetched none() {
            return NONE;
        }

        /**
         * The token block the fetched records start at.
         *
         * @return a token block index, {@code >= 0}
         */
        public int firstBlock() {
            return first;
        }

        /**
         * Verified records held.
         *
         * @return contiguous blocks from {@link #firstBlock()}, {@code >= 0}
         */
        public int blocks() {
            return records.size();
        }
    }

    /**
     * Fetches the full token blocks of {@code tokens} from block {@code fromBlock} on from the tier in one batch
     * and verifies them in order, up to the first that is missing or fails a check (rejections and tier failures
     * are counted here). Touches no sequence and allocates nothing in the store, so it may run on any thread (a
     * scheduler runs it off its step loop, so that a slow tier delays only this prompt); it returns within the
     * tier's timeout.
     *
     * @param tokens the prompt's token ids
     * @param fromBlock the first token block wanted, in {@code [0, tokens.length / tokensPerBlock]}
     * @return the verified blocks (empty on a miss or a tier failure)
     * @throws KvArgumentException if {@code tokens} is null or {@code fromBlock} is out of range
     */
    public Fetched fetch(int[] tokens, int fromBlock) {
        checkOpen();
        if (tokens == null) {
            throw new KvArgumentException("tokens must not be null");
        }
        int full = tokens.length / tokensPerBlock;
        if (fromBlock < 0 || fromBlock > full) {
            throw new KvArgumentException("fromBlock must be in [0, " + full + "], got " + fromBlock);
        }
        if (fromBlock == full) {
            return new Fetched(fromBlock, List.of(), 0, 0, 0);
        }
        BlockKey[] all = keys.keys(tokens);
        List<BlockKey> wanted = Arrays.asList(all).subList(fromBlock, full);
        long t0 = System.nanoTime();
        List<Optional<byte[]>> values;
        try {
            values = tier.getAll(wanted);
        } catch (RuntimeException e) {   // a tier that breaks its contract is still only a miss
            values = null;
        }
        if (values == null || values.size() != wanted.size()) {
            fetchFailures.increment();
            return new Fetched(fromBlock, List.of(), 0, wanted.size(), System.nanoTime() - t0);
        }
        List<VerifiedRecord> verified = new ArrayList<>();
        long bytes = 0;
        for (int i = 0; i < wanted.size(); i++) {
            Optional<byte[]> v = values.get(i);
            if (v == null || v.isEmpty()) {
                break;
            }
            int block = fromBlock + i;
            try {
                verified.add(PrefixBlockValue.decode(layout, all[block], block == 0 ? PrefixKeys.root() : all[block - 1],
                        tokens, block * tokensPerBlock, (long) block * tokensPerBlock, v.get()));
                bytes += v.get().length;
            } catch (TierRecordException e) {
                rejectedBlocks.increment();
                event("reject", 1, v.get().length, false, t0, e.reason() + ": " + e.getMessage());
                break;
            }
        }
        return new Fetched(fromBlock, verified, bytes, wanted.size(), System.nanoTime() - t0);
    }

    /**
     * Appends the fetched blocks that continue {@code match} (a {@link #local} match of the same {@code tokens})
     * to its sequence and caches them locally; returns the match grown by them (the same sequence). Blocks the
     * local cache gained since the fetch are not appended twice; a fetch that no longer continues the match (the
     * local cache lost blocks meanwhile) adds nothing. Out of memory half-way, the sequence is closed and a fresh
     * local match returned. Counts the lookup.
     *
     * @param match a {@link #local} match of {@code tokens}, not yet closed
     * @param fetched what {@link #fetch} returned for the same {@code tokens}
     * @param tokens the prompt's token ids
     * @return the match grown by the attached blocks (or a fresh local match after running out of memory)
     * @throws KvArgumentException if an argument is null
     */
    public PrefixMatch attach(PrefixMatch match, Fetched fetched, int[] tokens) {
        checkOpen();
        if (match == null || fetched == null || tokens == null) {
            throw new KvArgumentException("match, fetched blocks and tokens must not be null");
        }
        lookups.increment();
        int full = tokens.length / tokensPerBlock;
        int have = match.matchedTokens() / tokensPerBlock;
        localBlocks.add(have);
        int end = fetched.first + fetched.records.size();
        if (have == full || fetched.first > have || end <= have) {
            missedBlocks.add(full - have);
            return match;
        }
        List<VerifiedRecord> verified = fetched.records.subList(have - fetched.first, fetched.records.size());
        Sequence s = match.sequence();
        try {
            appendBlocks(s, have, verified);
        } catch (KvSlabException e) {
            // out of memory (or closed) half-way: the sequence's layers may differ in length now; start over
            // from what the local cache has
            s.close();
            missedBlocks.add(full - have);
            return local.lookup(tokens, keys.localSalt());
        }
        int got = have + verified.size();
        fetchedBlocks.add(verified.size());
        missedBlocks.add(full - got);
        bytesFetched.add(fetched.bytes);
        BlockKey[] all = keys.keys(Arrays.copyOf(tokens, got * tokensPerBlock));
        synchronized (known) {
            for (int b = have; b < got; b++) {
                known.add(all[b]);
            }
        }
        local.insert(s, Arrays.copyOf(tokens, got * tokensPerBlock), keys.localSalt());
        event("fetch", verified.size(), fetched.bytes, true, System.nanoTime() - fetched.nanos, null);
        return new PrefixMatch(s, got * tokensPerBlock);
    }

    /**
     * Appends verified records (blocks {@code first ..}) to every layer of {@code s}, raw rows without conversion,
     * read in place from the bytes the tier returned: each row is copied once, into the store's block.
     */
    private void appendBlocks(Sequence s, int first, List<VerifiedRecord> records) {
        int kvHeads = layout.kvHeads();
        int dim = layout.headDim();
        int rows = tokensPerBlock;
        int elem = layout.dtype().bytes();
        for (int r = 0; r < records.size(); r++) {
            VerifiedRecord rec = records.get(r);
            // a heap segment over the received bytes: no copy
            MemorySegment data = MemorySegment.ofArray(rec.buffer()).asSlice(rec.rowsOffset(), rec.rowsLength());
            long[] positions = rec.positions();
            for (int l = 0; l < layout.layers(); l++) {
                // table (l, h) holds K rows then V rows: rows x dim elements each
                long tableElems = 2L * rows * dim;
                long base = (long) l * kvHeads * tableElems;
                KvTensor k = new KvTensor(data.asSlice(base * elem), layout.dtype(), rows, kvHeads, dim, dim,
                        tableElems, 1);
                KvTensor v = new KvTensor(data.asSlice((base + (long) rows * dim) * elem), layout.dtype(), rows,
                        kvHeads, dim, dim, tableElems, 1);
                s.appendChunk(l, k, v, positions);
            }
        }
    }

    /**
     * Queues the full blocks of {@code s} holding {@code tokens} that are exactly a fresh prefill's and not yet
     * known to be in the tier, for the writer thread to store. Never waits: a full queue drops blocks (counted).
     * Call it when blocks become full, e.g. after a prompt's prefill and whenever decoding fills a block.
     *
     * @param s an open sequence of the store holding the prompt's prefill from position 0
     * @param tokens the prompt's token ids, in position order
     * @return blocks queued by this call
     */
    public int publish(Sequence s, int[] tokens) {
        checkOpen();
        if (s == null || tokens == null) {
            throw new KvArgumentException("sequence and tokens must not be null");
        }
        if (s.store() != store) {
            throw new KvArgumentException("sequence " + s.id() + " belongs to another store than this prefix tier");
        }
        int full = tokens.length / tokensPerBlock;
        int publishable = Math.min(full, TableAccess.of(s).publishableRows() / tokensPerBlock);
        if (publishable == 0) {
            return 0;
        }
        BlockKey[] all = keys.keys(Arrays.copyOf(tokens, publishable * tokensPerBlock));
        int queued = 0;
        for (int b = 0; b < publishable; b++) {
            synchronized (known) {
                if (known.contains(all[b])) {
                    continue;
                }
            }
            if (queue.remainingCapacity() == 0) {
                droppedBlocks.add(publishable - b);
                event("drop", publishable - b, 0, false, System.nanoTime(), "write-behind queue full");
                break;
            }
            byte[] rows = new byte[columnBytes];
            if (!TableAccess.of(s).readPublishableColumn(b, rows)) {
                break;   // changed since (compressed, shifted): nothing from here on is publishable
            }
            Pending p = new Pending(all[b], b == 0 ? PrefixKeys.root() : all[b - 1],
                    Arrays.copyOfRange(tokens, b * tokensPerBlock, (b + 1) * tokensPerBlock),
                    (long) b * tokensPerBlock, rows);
            synchronized (idle) {
                if (!queue.offer(p)) {
                    droppedBlocks.increment();
                    continue;
                }
                inFlight++;
            }
            synchronized (known) {
                known.add(all[b]);   // sent (or about to be): a failed put forgets it again
            }
            queuedBlocks.increment();
            queued++;
        }
        return queued;
    }

    /** Writer thread: encode and store queued blocks until closed. */
    private void drain() {
        while (!closed) {
            Pending p;
            try {
                p = queue.poll(100, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            }
            if (p == null) {
                continue;
            }
            long t0 = System.nanoTime();
            boolean ok = false;
            int size = 0;
            try {
                long[] positions = new long[tokensPerBlock];
                for (int i = 0; i < tokensPerBlock; i++) {
                    positions[i] = p.firstPosition + i;
                }
                byte[] record = BlockRecords.encode(layout, new BlockRecord(BlockRecord.Kind.KEYS_AND_VALUES,
                        BlockRecord.ALL, BlockRecord.ALL, positions, p.rows));
                byte[] value = PrefixBlockValue.encode(p.key, p.parent, p.tokens, 0, tokensPerBlock, record);
                size = value.length;
                ok = tier.put(p.key, value);
            } catch (RuntimeException | OutOfMemoryError e) {
                // a tier that throws is a failed put, nothing more; so is a heap (or direct memory) exhausted by a
                // stalled server's pending writes, which drain as soon as it answers or the client drops them: this
                // thread must outlive it, or publishing stops for the life of the process
                ok = false;
            } finally {
                if (ok) {
                    publishedBlocks.increment();
                    bytesPublished.add(size);
                } else {
                    publishFailures.increment();
                    synchronized (known) {
                        known.remove(p.key);
                    }
                }
                event("publish", 1, size, ok, t0, ok ? null : "the tier did not store it");
                synchronized (idle) {
                    inFlight--;
                    idle.notifyAll();
                }
            }
        }
    }

    /**
     * Waits until every queued block was written (or failed), at most {@code timeoutMillis}; returns whether the
     * queue is empty. For tests and orderly shutdown.
     *
     * @param timeoutMillis the longest wait in milliseconds, {@code >= 0}
     * @return {@code true} if the queue is empty
     * @throws InterruptedException if the calling thread is interrupted while waiting
     */
    public boolean flush(long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        synchronized (idle) {
            while (inFlight > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || closed) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(idle, left);
            }
            return true;
        }
    }

    /**
     * Counters since creation: lookups, blocks found locally, fetched, missed and rejected; blocks queued, published
     * and dropped; bytes moved; and the queue depth now.
     *
     * @return a snapshot of the counters
     */
    public PrefixTierStats stats() {
        return new PrefixTierStats(lookups.sum(), localBlocks.sum(), fetchedBlocks.sum(), missedBlocks.sum(),
                rejectedBlocks.sum(), fetchFailures.sum(), queuedBlocks.sum(), publishedBlocks.sum(),
                publishFailures.sum(), droppedBlocks.sum(), bytesFetched.sum(), bytesPublished.sum(), queue.size());
    }

    /** Stops the writer (queued blocks are dropped) and forgets the tier; does not close the tier or the cache. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        writer.interrupt();
        try {
            writer.join(TimeUnit.SECONDS.toMillis(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        queue.clear();
        synchronized (idle) {
            inFlight = 0;
            idle.notifyAll();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new ClosedException("prefix tier");
        }
    }

    private void event(String op, int blocks, long bytes, boolean ok, long t0, String failure) {
        if (!Jfr.recording()) {
            return;
        }
        TierEvent e = new TierEvent();
        if (e.isEnabled()) {
            e.tier = tier.name();
            e.operation = op;
            e.keys = blocks;
            e.bytes = bytes;
            e.ok = ok;
            e.failure = failure;
            e.nanos = System.nanoTime() - t0;
            e.commit();
        }
    }
}
