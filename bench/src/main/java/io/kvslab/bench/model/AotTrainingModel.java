package io.kvslab.bench.model;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;

/**
 * Writes a random llama2.c checkpoint and tokenizer shaped like stories260K ({@value #CHECKPOINT} and
 * {@value #TOKENIZER}): the workload of the build's AOT training run (bench/pom.xml runs {@code kvslab generate} on
 * them with {@code -XX:AOTCacheOutput}, so the JDK records the classes and method profiles of a real generation). The
 * model files of ../shared are not part of the repository, so the build makes its own; the text it generates is noise,
 * but every class and hot method of {@code generate} runs as it does with a trained model.
 *
 * <p>{@code java -cp kvslab.jar io.kvslab.bench.model.AotTrainingModel DIR}
 */
public final class AotTrainingModel {
    static final String CHECKPOINT = "aot-training.bin";
    static final String TOKENIZER = "aot-training-tok.bin";
    // stories260K's geometry: the same matrix shapes, so the same BLAS and kernel paths
    static final int DIM = 64;
    static final int HIDDEN = 172;
    static final int LAYERS = 5;
    static final int HEADS = 8;
    static final int KV_HEADS = 4;
    static final int VOCAB = 512;
    static final int CONTEXT = 512;
    private static final String WORDS = "Lily and Ben went to the park. Once upon a time there was a little girl who"
            + " liked to play with her dog in the sun; they were happy.";

    private AotTrainingModel() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: AotTrainingModel DIR (writes " + CHECKPOINT + " and " + TOKENIZER + ")");
            System.exit(2);
        }
        Path dir = Files.createDirectories(Path.of(args[0]));
        write(dir.resolve(CHECKPOINT), checkpoint(new Random(42)));
        write(dir.resolve(TOKENIZER), tokenizer(pieces()));
    }

    private static void write(Path file, byte[] bytes) throws IOException {
        try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(file))) {
            out.write(bytes);
        }
    }

    /** Header, then every tensor in llama2.c's order (shared classifier), then the two legacy RoPE tables. */
    static byte[] checkpoint(Random r) {
        long kvDim = (long) DIM / HEADS * KV_HEADS;
        long floats = (long) VOCAB * DIM + LAYERS * (2L * DIM + 2L * DIM * DIM + 2L * DIM * kvDim + 3L * DIM * HIDDEN)
                + DIM + (long) CONTEXT * (DIM / HEADS);
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(Math.addExact(28, Math.multiplyExact(4, floats))))
                .order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(DIM).putInt(HIDDEN).putInt(LAYERS).putInt(HEADS).putInt(KV_HEADS).putInt(VOCAB).putInt(CONTEXT);
        // embedding = classifier; the rows of <unk>, BOS and EOS stay zero so greedy decoding never picks BOS and stops
        for (int t = 0; t < VOCAB; t++) {
            gaussian(b, r, t < 3 ? 0 : DIM, 1f);
            zeros(b, t < 3 ? DIM : 0);
        }
        ones(b, r, LAYERS * DIM);                      // rms_att_weight
        gaussian(b, r, LAYERS * DIM * DIM, 0.15f);       // wq
        gaussian(b, r, LAYERS * DIM * (int) kvDim, 0.15f); // wk
        gaussian(b, r, LAYERS * DIM * (int) kvDim, 0.15f); // wv
        gaussian(b, r, LAYERS * DIM * DIM, 0.15f);       // wo
        ones(b, r, LAYERS * DIM);                      // rms_ffn_weight
        gaussian(b, r, 3 * LAYERS * DIM * HIDDEN, 0.1f); // w1, w2, w3
        ones(b, r, DIM);                               // rms_final_weight
        zeros(b, CONTEXT * (DIM / HEADS));             // legacy freq_cis_real + freq_cis_imag
        if (b.hasRemaining()) {
            throw new IllegalStateException(b.remaining() + " bytes of the checkpoint left unwritten");
        }
        return b.array();
    }

    private static void gaussian(ByteBuffer b, Random r, int n, float scale) {
        for (int i = 0; i < n; i++) {
            b.putFloat((float) r.nextGaussian() * scale);
        }
    }

    private static void ones(ByteBuffer b, Random r, int n) {
        for (int i = 0; i < n; i++) {
            b.putFloat(1f + 0.1f * (float) r.nextGaussian());
        }
    }

    private static void zeros(ByteBuffer b, int n) {
        for (int i = 0; i < n; i++) {
            b.putFloat(0f);
        }
    }

    /** llama2.c's layout: 3 specials, 256 byte pieces, then merges (printable characters, bigrams, words). */
    static List<String> pieces() {
        List<String> pieces = new ArrayList<>(List.of("<unk>", "\n<s>\n", "\n</s>\n"));
        for (int c = 0; c < 256; c++) {
            pieces.add(String.format("<0x%02X>", c));
        }
        Set<String> merges = new LinkedHashSet<>();
        for (char c = ' '; c <= '~'; c++) {
            merges.add(String.valueOf(c));
        }
        for (String w : WORDS.split(" ")) {
            merges.add(" " + w);
        }
        for (int i = 0; i + 1 < WORDS.length(); i++) {
            merges.add(WORDS.substring(i, i + 2));
        }
        for (char a = 'a'; merges.size() < VOCAB - pieces.size(); a++) {
            for (char z = 'a'; z <= 'z' && merges.size() < VOCAB - pieces.size(); z++) {
                merges.add(" " + a + z);
            }
        }
        merges.stream().limit(VOCAB - pieces.size()).forEach(pieces::add);
        return pieces;
    }

    /** int32 max_token_length, then per piece: float32 score (longer pieces merge first), int32 length, bytes. */
    static byte[] tokenizer(List<String> pieces) {
        int max = pieces.stream().mapToInt(p -> p.getBytes(StandardCharsets.UTF_8).length).max().orElse(0);
        ByteBuffer b = ByteBuffer.allocate(4 + pieces.stream().mapToInt(p -> 8 + p.getBytes(StandardCharsets.UTF_8).length)
                .sum()).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(max);
        for (int i = 0; i < pieces.size(); i++) {
            byte[] p = pieces.get(i).getBytes(StandardCharsets.UTF_8);
            b.putFloat(i < 259 ? 0f : p.length - i / 1000f).putInt(p.length).put(p);
        }
        return b.array();
    }
}
