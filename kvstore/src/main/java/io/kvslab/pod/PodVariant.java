package io.kvslab.pod;

import io.kvslab.KvArgumentException;

/** Which PoD formulation the distant part uses (the two arXiv versions describe different models). */
public enum PodVariant {
    /** arXiv v2, "shares key states": the current layer's query on the base layer's keys. */
    V2_SHARED_KEYS("v2"),
    /** arXiv v1, "shares attention scores": the base layer's scores (its query on its keys) reused. */
    V1_SHARED_SCORES("v1");

    private final String label;

    PodVariant(String label) {
        this.label = label;
    }

    /**
     * "v1" or "v2".
     *
     * @return {@code "v1"} or {@code "v2"}
     */
    public String label() {
        return label;
    }

    /**
     * The variant named "v1" or "v2".
     *
     * @param label {@code "v1"} or {@code "v2"}, any case
     * @return the variant
     * @throws KvArgumentException for any other label
     */
    public static PodVariant of(String label) {
        for (PodVariant v : values()) {
            if (v.label.equalsIgnoreCase(label)) {
                return v;
            }
        }
        throw new KvArgumentException("unknown PoD variant '" + label + "'; expected v1 or v2");
    }
}
