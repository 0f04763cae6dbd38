package io.kvslab;

import io.kvslab.KvArgumentException;

/**
 * Rotary position embedding parameters, for re-rotating stored keys when their positions shift
 * ({@link Sequence#shiftPositions}).
 *
 * <p><b>Convention: adjacent pairs</b> (llama2.c, Meta's reference Llama, GGML's "normal" mode). Elements
 * {@code (2i, 2i+1)} of a key, {@code i < rotaryDims / 2}, form one pair rotated by the angle
 * {@code position * theta^(-2i / rotaryDims)}:
 * <pre>
 *   x'[2i]   = x[2i] cos(a) - x[2i+1] sin(a)
 *   x'[2i+1] = x[2i] sin(a) + x[2i+1] cos(a)
 * </pre>
 * Elements from {@code rotaryDims} on are not rotated (partial rotary embeddings). Because rotations of one plane
 * compose by adding angles, a key stored at position {@code p} is moved to {@code p + delta} by rotating it once
 * more by {@code delta * theta^(-2i / rotaryDims)}. The half-split ("NeoX") pairing {@code (i, i + d/2)} is not
 * supported; models that use it need their keys permuted to this convention first.
 *
 * @param theta       base frequency, {@code > 0} (Llama 2: 10000; Llama 3: 500000)
 * @param rotaryDims  rotated elements per head, even; {@code 0} means the whole head ({@code headDim})
 */
public record RopeRotation(double theta, int rotaryDims) {
    /** theta 10000, every element of the head rotated. */
    public static final RopeRotation DEFAULT = new RopeRotation(10000.0, 0);

    /**
     * Checks theta and the rotary dimension count.
     *
     * @throws KvArgumentException if theta is not finite and positive, or {@code rotaryDims} is negative or odd
     */
    public RopeRotation {
        if (!(theta > 0) || Double.isInfinite(theta)) {
            throw new KvArgumentException("theta must be a finite value > 0, got " + theta);
        }
        if (rotaryDims < 0 || rotaryDims % 2 != 0) {
            throw new KvArgumentException("rotaryDims must be an even number >= 0 (0 = whole head), got " + rotaryDims);
        }
    }

    /**
     * Every element rotated, the given base frequency.
     *
     * @param theta base frequency, finite and {@code > 0}
     * @return the rotation
     */
    public static RopeRotation ofTheta(double theta) {
        return new RopeRotation(theta, 0);
    }

    /**
     * Rotated elements for a head of {@code headDim} elements; throws if {@code rotaryDims} does not fit.
     *
     * @param headDim elements per head, {@code >= 1}
     * @return {@code rotaryDims}, or {@code headDim} when it is 0
     * @throws KvArgumentException if {@code rotaryDims} exceeds {@code headDim}
     */
    public int dims(int headDim) {
        int d = rotaryDims == 0 ? headDim : rotaryDims;
        if (d > headDim || d % 2 != 0) {
            throw new KvArgumentException("rotaryDims must be even and <= headDim (" + headDim + "), got " + d);
        }
        return d;
    }

    /**
     * Rotates {@code row[from .. from + headDim)} in place by {@code delta} positions.
     *
     * @param row the array holding the key
     * @param from index of the key's first element
     * @param headDim elements per head
     * @param delta positions to move the key by (negative moves it back)
     */
    public void rotate(float[] row, int from, int headDim, long delta) {
        int d = dims(headDim);
        for (int i = 0; i < d / 2; i++) {
            double angle = delta * Math.pow(theta, -2.0 * i / d);
            double c = Math.cos(angle);
            double sn = Math.sin(angle);
            double x0 = row[from + 2 * i];
            double x1 = row[from + 2 * i + 1];
            row[from + 2 * i] = (float) (x0 * c - x1 * sn);
            row[from + 2 * i + 1] = (float) (x0 * sn + x1 * c);
        }
    }
}
