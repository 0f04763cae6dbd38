package io.kvslab;

/** A caller passed a value KVSlab cannot accept; the message names the value and the allowed range or shape. */
public class KvArgumentException extends KvSlabException {
    /**
     * An exception describing the rejected value.
     *
     * @param message names the value and what is allowed
     */
    public KvArgumentException(String message) {
        super(message);
    }
}
