package io.kvslab.bench.fuzz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/** The fields of a llama2.c checkpoint (its 7-int header) and of a llama2.c tokenizer file (max length, token lengths). */
final class Llama2cStructure {
    private static final String[] HEADER = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};

    private Llama2cStructure() {}

    static Structure checkpoint(String name, byte[] b) {
        List<Field> f = new ArrayList<>();
        for (int i = 0; i < HEADER.length; i++) {
            f.add(new Field(HEADER[i], 4 * i, 4, i == 5 ? FieldKind.COUNT : FieldKind.DIM));
        }
        List<List<Field>> products = List.of(
                List.of(f.get(0), f.get(1), f.get(2)),      // dim x hidden x layers: the FFN weights
                List.of(f.get(0), f.get(0), f.get(2)),      // dim^2 x layers
                List.of(f.get(5), f.get(0)),                // vocab x dim: embedding and classifier
                List.of(f.get(6), f.get(0), f.get(3)),      // seq_len x head size
                List.of(f.get(2), f.get(4), f.get(0)));     // layers x kvHeads x dim
        return new Structure(name, b, List.copyOf(f), products, List.of(), 1);
    }

    static Structure tokenizer(String name, byte[] b) {
        List<Field> f = new ArrayList<>();
        f.add(new Field("max_token_length", 0, 4, FieldKind.SIZE));
        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int pos = 4;
        for (int i = 0; pos + 8 <= b.length; i++) {
            f.add(new Field("token[" + i + "].score", pos, 4, FieldKind.VALUE));
            f.add(new Field("token[" + i + "].length", pos + 4, 4, FieldKind.SIZE));
            pos += 8 + buf.getInt(pos + 4);
        }
        return new Structure(name, b, List.copyOf(f), List.of(), List.of(), 1);
    }

    /** The exact size a checkpoint with this header must have (llama2.c's layout), or -1 if it overflows or is invalid. */
    static long expectedSize(byte[] b) {
        if (b.length < 28) {
            return -1;
        }
        ByteBuffer h = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        long dim = h.getInt(0);
        long hidden = h.getInt(4);
        long layers = h.getInt(8);
        long heads = h.getInt(12);
        long kvHeads = h.getInt(16);
        int rawVocab = h.getInt(20);
        long seq = h.getInt(24);
        if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kvHeads <= 0 || seq <= 0 || rawVocab == 0
                || rawVocab == Integer.MIN_VALUE || dim % heads != 0) {
            return -1;
        }
        long vocab = Math.abs((long) rawVocab);
        long headSize = dim / heads;
        long kvDim = headSize * kvHeads;
        try {
            long perLayer = Math.addExact(Math.addExact(2 * dim, Math.multiplyExact(2 * dim, dim)),
                    Math.addExact(Math.multiplyExact(2 * dim, kvDim), Math.multiplyExact(3 * dim, hidden)));
            long floats = Math.addExact(Math.multiplyExact(vocab, dim), Math.multiplyExact(layers, perLayer));
            floats = Math.addExact(floats, dim);
            floats = Math.addExact(floats, Math.multiplyExact(seq, headSize));
            if (rawVocab < 0) {
                floats = Math.addExact(floats, Math.multiplyExact(vocab, dim));
            }
            return Math.addExact(28, Math.multiplyExact(floats, 4));
        } catch (ArithmeticException e) {
            return -1;
        }
    }
}
