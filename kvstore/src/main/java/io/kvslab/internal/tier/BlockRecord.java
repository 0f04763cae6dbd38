package io.kvslab.internal.tier;

/**
 * One decoded (or to-be-encoded) block record: raw rows of one block of one (layer, KV head), or of the same
 * block index of every (layer, KV head) of a layout ({@link #ALL}), with the rows' absolute positions.
 *
 * <p>{@code rows} holds the stored bytes in the store's dtype, little-endian, laid out table by table (layer-major,
 * then KV head) and, for {@link Kind#KEYS_AND_VALUES}, K rows then V rows within each table:
 * {@code rows[((table * parts) + part) * rowCount * rowBytes ..]}; see {@link BlockRecords#rowsOffset}.
 * Arrays are not copied (a record is a carrier, not a defensive value): do not change them after encoding.
 *
 * @param kind      which rows the record holds
 * @param layer     the layer, or {@link #ALL} for every (layer, KV head)
 * @param kvHead    the KV head, or {@link #ALL} (together with {@code layer})
 * @param positions absolute position of each row, strictly increasing, {@code >= 0}; its length is the row count
 * @param rows      the raw rows
 */
public record BlockRecord(Kind kind, int layer, int kvHead, long[] positions, byte[] rows) {
    /** {@code layer} and {@code kvHead} of a record that spans every (layer, KV head). */
    public static final int ALL = -1;

    /** Which rows a record carries. The codes are the format's; they never change. */
    public enum Kind {
        KEYS(0, 1),
        VALUES(1, 1),
        KEYS_AND_VALUES(2, 2);

        private final int code;
        private final int parts;

        Kind(int code, int parts) {
            this.code = code;
            this.parts = parts;
        }

        /** The byte stored in the header. */
        public int code() {
            return code;
        }

        /** Row sets per table: 1 for K or V alone, 2 for K and V. */
        public int parts() {
            return parts;
        }

        static Kind ofCode(int code) {
            for (Kind k : values()) {
                if (k.code == code) {
                    return k;
                }
            }
            return null;
        }
    }

    /** Rows per table. */
    public int rowCount() {
        return positions.length;
    }

    /** Whether the record spans every (layer, KV head) of the layout. */
    public boolean allTables() {
        return layer == ALL;
    }
}
