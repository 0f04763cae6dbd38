package io.kvslab.internal.tier;

import io.kvslab.KvLayout;
import io.kvslab.tier.BlockKey;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * Content addresses of prefix blocks shared across processes: block i of a prompt is named
 * {@code K_i = first 128 bits of SHA-256(K_{i-1} || salt || tokens of block i)}, {@code K_{-1} = 0}, where the
 * 32-byte salt is {@code SHA-256("kvslab-prefix-v1" || model id || layout fingerprint)}. A key thus names the whole
 * prefix up to its block, for one model and one store layout (dtype, tokens per block, geometry): two processes
 * with the same model and layout compute the same keys, any difference gives disjoint keys. The local
 * {@link io.kvslab.PrefixCache}'s 64-bit salt is derived from the same salt.
 */
public final class PrefixKeys {
    private final byte[] salt;
    private final long localSalt;
    private final int tokensPerBlock;

    public PrefixKeys(String modelId, KvLayout layout) {
        MessageDigest d = sha256();
        d.update("kvslab-prefix-v1".getBytes(StandardCharsets.US_ASCII));
        byte[] id = modelId.getBytes(StandardCharsets.UTF_8);
        d.update(ByteBuffer.allocate(4).putInt(id.length).array());
        d.update(id);
        d.update(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(BlockRecords.layoutFingerprint(layout))
                .array());
        this.salt = d.digest();
        this.localSalt = ByteBuffer.wrap(salt).order(ByteOrder.LITTLE_ENDIAN).getLong(16);
        this.tokensPerBlock = layout.tokensPerBlock();
    }

    /** The salt for the local prefix cache (64 bits of the same salt). */
    public long localSalt() {
        return localSalt;
    }

    /** Keys of the full blocks of {@code tokens}. */
    public BlockKey[] keys(int[] tokens) {
        int n = tokens.length / tokensPerBlock;
        BlockKey[] out = new BlockKey[n];
        MessageDigest d = sha256();
        ByteBuffer in = ByteBuffer.allocate(16 + salt.length + 4 * tokensPerBlock).order(ByteOrder.LITTLE_ENDIAN);
        long high = 0;
        long low = 0;
        for (int i = 0; i < n; i++) {
            in.clear();
            in.putLong(high).putLong(low).put(salt);
            for (int t = 0; t < tokensPerBlock; t++) {
                in.putInt(tokens[i * tokensPerBlock + t]);
            }
            d.reset();
            d.update(in.array(), 0, in.position());
            ByteBuffer h = ByteBuffer.wrap(d.digest()).order(ByteOrder.BIG_ENDIAN);
            high = h.getLong(0);
            low = h.getLong(8);
            out[i] = new BlockKey(high, low);
        }
        return out;
    }

    /** The parent key of the first block. */
    public static BlockKey root() {
        return new BlockKey(0, 0);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
