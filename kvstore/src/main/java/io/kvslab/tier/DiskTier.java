package io.kvslab.tier;

import io.kvslab.ClosedException;
import io.kvslab.ConcurrentUseException;
import io.kvslab.KvArgumentException;
import io.kvslab.KvSlabException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.LongAdder;
import java.util.regex.Pattern;

/**
 * A {@link BlockTier} on a local directory: one file per key ({@code <32 hex digits>.kvb}), a size cap with
 * least-recently-used eviction, for swapped-out sequences and cold prefix blocks alike (docs/tiers.md).
 *
 * <ul>
 *   <li><b>Atomic writes</b>: a record is written to a temporary file in the directory and renamed over the key's
 *       file, so a reader sees the old value or the new one, never a mix; a crash leaves at most a temporary file,
 *       removed at the next open. Records are not fsynced: after a power loss a record may be lost or cut short,
 *       which the record's checks turn into a miss.</li>
 *   <li><b>Cap</b>: the bytes of all records stay at most {@code capBytes}; a put that would exceed it first
 *       evicts the least recently used records (gets and puts count as use). A record larger than the cap is
 *       declined ({@code put} returns false).</li>
 *   <li><b>Restart</b>: {@link #open} indexes the records already in the directory (oldest modification first in
 *       the LRU order), ignores files that are not records, and evicts down to the cap. One tier per directory:
 *       an exclusive lock file ({@code .kvslab-tier.lock}) refuses a second opener, in this or another process.</li>
 *   <li>Plain file reads and writes, not memory maps: a record file another process truncates cannot fault the
 *       JVM (a mapped read would raise SIGBUS); a short or oversized file is a failed get.</li>
 * </ul>
 * Thread-safe: the index is guarded by this object's monitor; file contents are read and written outside it.
 */
public final class DiskTier implements BlockTier {
    /** Record file suffix. */
    static final String SUFFIX = ".kvb";
    static final String LOCK_FILE = ".kvslab-tier.lock";
    private static final Pattern RECORD = Pattern.compile("[0-9a-f]{32}\\.kvb");
    private static final Pattern TEMP = Pattern.compile("[0-9a-f]{32}\\.[0-9a-f]{16}\\.tmp");
    /** Largest record a get reads into one array. */
    static final long MAX_RECORD_BYTES = Integer.MAX_VALUE - 16;

    private final Path directory;
    private final long capBytes;
    private final FileChannel lockChannel;
    private final FileLock lock;
    /** key -> record bytes, in access order (least recently used first). Guarded by this. */
    private final LinkedHashMap<BlockKey, Long> index = new LinkedHashMap<>(16, 0.75f, true);
    private long bytesHeld;
    private volatile boolean closed;

    private final LongAdder puts = new LongAdder();
    private final LongAdder putFailures = new LongAdder();
    private final LongAdder hits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    private final LongAdder getFailures = new LongAdder();
    private final LongAdder removes = new LongAdder();
    private final LongAdder bytesWritten = new LongAdder();
    private final LongAdder bytesRead = new LongAdder();
    private final LongAdder evictions = new LongAdder();

    private DiskTier(Path directory, long capBytes, FileChannel lockChannel, FileLock lock) {
        this.directory = directory;
        this.capBytes = capBytes;
        this.lockChannel = lockChannel;
        this.lock = lock;
    }

    /**
     * Opens (creating it if needed) a disk tier on {@code directory} holding at most {@code capBytes} of records.
     *
     * @param directory the directory holding one file per record
     * @param capBytes the most bytes of records kept, {@code > 0}; least recently used records are evicted past it
     * @return the tier; close it to release the directory's lock
     * @throws KvArgumentException if the directory is null or not a directory, or the cap is not positive
     * @throws ConcurrentUseException if another open tier (this process or another) uses the directory
     * @throws KvSlabException if the directory cannot be created, locked or listed
     */
    public static DiskTier open(Path directory, long capBytes) {
        if (directory == null) {
            throw new KvArgumentException("directory must not be null");
        }
        if (capBytes <= 0) {
            throw new KvArgumentException("capBytes must be > 0, got " + capBytes);
        }
        if (Files.exists(directory) && !Files.isDirectory(directory)) {
            throw new KvArgumentException("disk tier " + directory + " exists and is not a directory");
        }
        FileChannel ch = null;
        try {
            Files.createDirectories(directory);
            ch = FileChannel.open(directory.resolve(LOCK_FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock;
            try {
                lock = ch.tryLock();
            } catch (OverlappingFileLockException e) {
                lock = null;
            }
            if (lock == null) {
                throw new ConcurrentUseException("disk tier " + directory + " is open already (in this or another "
                        + "process); one tier per directory");
            }
            DiskTier tier = new DiskTier(directory, capBytes, ch, lock);
            tier.reindex();
            return tier;
        } catch (IOException e) {
            closeQuietly(ch);
            throw new KvSlabException("cannot open disk tier " + directory + ": " + e, e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    /** Indexes existing records (oldest first), deletes our stale temporary files, evicts down to the cap. */
    private void reindex() throws IOException {
        record Found(BlockKey key, long size, long modified) {}
        List<Found> found = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(directory)) {
            for (Path p : files) {
                String name = p.getFileName().toString();
                try {
                    if (TEMP.matcher(name).matches()) {
                        Files.deleteIfExists(p);
                        continue;
                    }
                    if (!RECORD.matcher(name).matches()) {
                        continue;   // not ours: left alone
                    }
                    BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
                    if (!a.isRegularFile()) {
                        continue;
                    }
                    found.add(new Found(BlockKey.ofHex(name.substring(0, 32)), a.size(),
                            a.lastModifiedTime().toMillis()));
                } catch (IOException e) {
                    // vanished or unreadable while listing: not indexed
                }
            }
        }
        found.sort(Comparator.comparingLong(Found::modified));
        synchronized (this) {
            for (Found f : found) {
                index.put(f.key(), f.size());
                bytesHeld += f.size();
            }
            evictUntil(0);
        }
    }

    @Override
    public String name() {
        return "disk";
    }

    /**
     * The directory this tier stores its records in.
     *
     * @return the directory given to {@link #open}
     */
    public Path directory() {
        return directory;
    }

    /**
     * The most bytes of records this tier keeps.
     *
     * @return the cap given to {@link #open}
     */
    public long capBytes() {
        return capBytes;
    }

    /**
     * Records evicted to stay under the cap since the tier was opened.
     *
     * @return the eviction count
     */
    public long evictions() {
        return evictions.sum();
    }

    /**
     * Records held now.
     *
     * @return the record count
     */
    public synchronized int records() {
        return index.size();
    }

    @Override
    public boolean put(BlockKey key, byte[] record) {
        checkArgs(key);
        if (record == null) {
            throw new KvArgumentException("record must not be null");
        }
        if (record.length > capBytes) {
            putFailures.increment();
            return false;
        }
        Path target = file(key);
        Path temp = directory.resolve(key.hex() + "." + String.format("%016x", ThreadLocalRandom.current().nextLong())
                + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer buf = ByteBuffer.wrap(record);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
            }
            synchronized (this) {
                checkOpen();
                Long old = index.remove(key);   // replaced below: its bytes do not count against the new one
                if (old != null) {
                    bytesHeld -= old;
                }
                evictUntil(record.length);
                try {
                    move(temp, target);
                } catch (IOException e) {
                    if (old != null && Files.exists(target)) {   // the rename failed: the old value is intact
                        index.put(key, old);
                        bytesHeld += old;
                    }
                    throw e;
                }
                index.put(key, (long) record.length);
                bytesHeld += record.length;
            }
            puts.increment();
            bytesWritten.add(record.length);
            return true;
        } catch (IOException e) {
            deleteQuietly(temp);
            putFailures.increment();
            return false;
        } catch (RuntimeException e) {
            deleteQuietly(temp);
            throw e;
        }
    }

    private static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Evicts least recently used records until {@code incoming} more bytes fit under the cap. Monitor held. */
    private void evictUntil(long incoming) {
        Iterator<Map.Entry<BlockKey, Long>> it = index.entrySet().iterator();
        while (bytesHeld + incoming > capBytes && it.hasNext()) {
            Map.Entry<BlockKey, Long> e = it.next();
            deleteQuietly(file(e.getKey()));
            bytesHeld -= e.getValue();
            it.remove();
            evictions.increment();
        }
    }

    @Override
    public Optional<byte[]> get(BlockKey key) {
        checkArgs(key);
        long written;
        synchronized (this) {
            Long indexed = index.get(key);   // get() also marks it recently used
            if (indexed == null) {
                misses.increment();
                return Optional.empty();
            }
            written = indexed;
        }
        Path file = file(key);
        // A FIFO or device put in place of a record would block the open or feed it without end: regular files only.
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
            if (Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
                getFailures.increment();
                return Optional.empty();
            }
            forget(key);
            misses.increment();
            return Optional.empty();
        }
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            long size = ch.size();
            // Longer than written: not our record, and reading it could take any amount of heap. Shorter is read,
            // so that the record's own checks name the truncation.
            if (size > written || size > MAX_RECORD_BYTES || size > capBytes) {
                getFailures.increment();
                return Optional.empty();
            }
            byte[] b = new byte[(int) size];
            ByteBuffer buf = ByteBuffer.wrap(b);
            while (buf.hasRemaining()) {
                if (ch.read(buf, buf.position()) < 0) {
                    break;   // cut short under us: return what is there, the record's checks reject it
                }
            }
            byte[] got = buf.position() == b.length ? b : java.util.Arrays.copyOf(b, buf.position());
            hits.increment();
            bytesRead.add(got.length);
            return Optional.of(got);
        } catch (NoSuchFileException e) {
            forget(key);   // evicted or removed between the index and the open, or deleted behind our back
            misses.increment();
            return Optional.empty();
        } catch (IOException e) {
            getFailures.increment();
            return Optional.empty();
        }
    }

    private synchronized void forget(BlockKey key) {
        if (!Files.exists(file(key))) {
            Long old = index.remove(key);
            if (old != null) {
                bytesHeld -= old;
            }
        }
    }

    @Override
    public boolean remove(BlockKey key) {
        checkArgs(key);
        synchronized (this) {
            Long old = index.get(key);
            if (old == null) {
                return false;
            }
            try {
                Files.deleteIfExists(file(key));
            } catch (IOException e) {
                return false;   // still on disk: it stays indexed and counted against the cap
            }
            index.remove(key);
            bytesHeld -= old;
        }
        removes.increment();
        return true;
    }

    @Override
    public TierStats stats() {
        long held;
        synchronized (this) {
            held = bytesHeld;
        }
        return new TierStats(puts.sum(), putFailures.sum(), hits.sum(), misses.sum(), getFailures.sum(),
                removes.sum(), bytesWritten.sum(), bytesRead.sum(), held);
    }

    /** Releases the directory lock; records stay on disk for the next {@link #open}. Idempotent. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            lock.release();
        } catch (IOException ignored) {
            // the channel close below releases it too
        }
        closeQuietly(lockChannel);
    }

    @Override
    public String toString() {
        return "DiskTier[" + directory + ", cap " + capBytes + " bytes]";
    }

    private Path file(BlockKey key) {
        return directory.resolve(key.hex() + SUFFIX);
    }

    private void checkArgs(BlockKey key) {
        if (key == null) {
            throw new KvArgumentException("key must not be null");
        }
        checkOpen();
    }

    private void checkOpen() {
        if (closed) {
            throw new ClosedException("disk tier " + directory);
        }
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // a file we cannot delete is at worst reindexed (or ignored) at the next open
        }
    }

    private static void closeQuietly(FileChannel ch) {
        if (ch != null) {
            try {
                ch.close();
            } catch (IOException ignored) {
                // nothing buffered to lose
            }
        }
    }
}
