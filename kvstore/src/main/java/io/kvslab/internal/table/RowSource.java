package io.kvslab.internal.table;

import io.kvslab.DType;
import io.kvslab.KvArgumentException;
import io.kvslab.KvTensor;

import java.lang.foreign.MemorySegment;

/**
 * Where appended K or V rows come from: a caller's fp32 array laid out [token][kvHead][dim], or a caller's
 * {@link KvTensor} (any element type, any strides). One check of every value before anything is written, then one
 * copy per row straight into block memory.
 */
sealed interface RowSource {
    /** Throws a typed exception unless every value may be stored as {@code store}. */
    void check(String what, DType store);

    /** Writes head {@code h} of token {@code tok} into {@code dst} at byte {@code offset} as {@code store}. */
    void write(int tok, int h, MemorySegment dst, long offset, DType store);

    /**
     * Writes head {@code h} of tokens {@code tok .. tok + rows - 1} into consecutive rows of {@code dst} from byte
     * {@code offset} (one block's run of rows; {@code rowBytes} apart).
     */
    default void writeRows(int tok, int rows, int h, MemorySegment dst, long offset, long rowBytes, DType store) {
        for (int j = 0; j < rows; j++) {
            write(tok + j, h, dst, offset + j * rowBytes, store);
        }
    }

    /**
     * fp32 rows in a heap array, {@code [n][heads][dim]}. Not a record: each sequence keeps one instance per side (K,
     * V) and points it at the caller's array for the length of one append, under the sequence's write lock, so
     * that an append makes no object ({@link #of}, {@link #release}).
     */
    final class Floats implements RowSource {
        private final int heads;
        private final int dim;
        private float[] data;

        Floats(int heads, int dim) {
            this.heads = heads;
            this.dim = dim;
        }

        /** Points this source at {@code rows} (caller holds the sequence's write lock); returns this. */
        Floats of(float[] rows) {
            this.data = rows;
            return this;
        }

        /** Drops the reference to the caller's array (end of the append). */
        void release() {
            this.data = null;
        }

        @Override
        public void check(String what, DType store) {
            RowCodec.checkValues(what, data, 0, data.length, store);
        }

        @Override
        public void write(int tok, int h, MemorySegment dst, long offset, DType store) {
            RowCodec.write(data, (tok * heads + h) * dim, dst, offset, dim, store);
        }

        @Override
        public void writeRows(int tok, int rows, int h, MemorySegment dst, long offset, long rowBytes, DType store) {
            RowCodec.writeRows(data, (tok * heads + h) * dim, heads * dim, rows, dim, dst, offset, store);
        }
    }

    /**
     * A caller's tensor, read in place. Reused like {@link Floats}: one instance per side and sequence, pointed at the
     * caller's tensor for one append under the write lock, so that an append of tensors makes no object either.
     */
    final class Tensor implements RowSource {
        private KvTensor tensor;

        /** Points this source at {@code t} (caller holds the sequence's write lock); returns this. */
        Tensor of(KvTensor t) {
            this.tensor = t;
            return this;
        }

        /** Drops the reference to the caller's tensor (end of the append). */
        void release() {
            this.tensor = null;
        }

        @Override
        public void check(String what, DType store) {
            MemorySegment data = tensor.data();
            if (!data.scope().isAlive()) {
                throw new KvArgumentException(what + "'s memory belongs to a closed arena");
            }
            if (!data.isAccessibleBy(Thread.currentThread())) {
                throw new KvArgumentException(what + "'s memory is confined to another thread than the caller's");
            }
            TensorCodec.check(what, tensor, store);   // closed during the scan: appendRows types it
        }

        @Override
        public void write(int tok, int h, MemorySegment dst, long offset, DType store) {
            TensorCodec.writeRow(tensor, tok, h, dst, offset, store);
        }
    }
}
