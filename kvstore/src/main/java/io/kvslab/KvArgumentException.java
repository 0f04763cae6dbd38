package io.kvslab;

/** A caller passed a value KVSlab cannot accept; the message names the value and the allowed range or shape. */
public class KvArgumentException extends KvSlabException {
    public KvArgumentException(String message) {
        super(message);
    }
}
