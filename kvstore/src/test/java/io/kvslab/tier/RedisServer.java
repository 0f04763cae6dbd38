package io.kvslab.tier;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A real {@code redis-server} for tests, on a free loopback port, persistence off ({@code --save ''}), its files in
 * a temporary directory. Never a mock. Fails the test (it does not skip) when redis-server is missing:
 * {@code ./kvslab test} installs it first ({@code .ci/redis.sh}); {@code KVSLAB_REDIS_SERVER} names another binary.
 *
 * <p>{@link #command} talks RESP over a plain socket, independent of the Lettuce client under test.
 */
public final class RedisServer implements AutoCloseable {
    private final String binary;
    private final Path dir;
    private final List<String> extraArgs;
    private int port;
    private Process process;

    private RedisServer(String binary, Path dir, List<String> extraArgs) {
        this.binary = binary;
        this.dir = dir;
        this.extraArgs = extraArgs;
    }

    /** Starts a server on a free loopback port with the given extra options (e.g. {@code "--maxmemory", "2mb"}). */
    public static RedisServer start(String... extraArgs) {
        String binary = System.getenv().getOrDefault("KVSLAB_REDIS_SERVER", "redis-server");
        Path dir;
        try {
            dir = Files.createTempDirectory("kvslab-redis");
        } catch (IOException e) {
            throw new IllegalStateException("cannot create a directory for redis-server", e);
        }
        RedisServer r = new RedisServer(binary, dir, List.of(extraArgs));
        IllegalStateException last = null;
        for (int attempt = 0; attempt < 5; attempt++) {
            try {
                r.launch(freePort());
                return r;
            } catch (IllegalStateException e) {
                last = e;   // most likely another process took the port between probe and bind: another one
            }
        }
        throw last;
    }

    public int port() {
        return port;
    }

    public String uri() {
        return "redis://127.0.0.1:" + port;
    }

    public boolean alive() {
        return process != null && process.isAlive();
    }

    /** SIGKILL: the server vanishes mid-conversation, as a crashed node does. */
    public void kill() {
        if (process != null) {
            process.destroyForcibly();
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * SIGSTOP: the process freezes (a stalled node: connections are accepted by the kernel, nothing is answered)
     * until {@link #resume}. Unlike {@code CLIENT PAUSE}, which also holds the {@code CLIENT UNPAUSE} of a new
     * connection, it can be ended at any moment.
     */
    public void pause() {
        signal("-STOP");
    }

    /** SIGCONT after {@link #pause}; harmless on a running server. */
    public void resume() {
        signal("-CONT");
    }

    private void signal(String sig) {
        if (process == null || !process.isAlive()) {
            return;
        }
        try {
            Process p = new ProcessBuilder("kill", sig, Long.toString(process.pid())).inheritIO().start();
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException("kill " + sig + " " + process.pid() + " failed");
            }
        } catch (IOException e) {
            throw new IllegalStateException("cannot run kill " + sig, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Starts the server again on the same port (empty: persistence is off). */
    public void restart() {
        kill();
        launch(port);
    }

    /** Sends one command and returns its reply (String, Long, byte[], List, or null); a RESP error throws. */
    public Object command(Object... args) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port), 2000);
            s.setSoTimeout(10_000);
            OutputStream out = s.getOutputStream();
            ByteArrayOutputStream req = new ByteArrayOutputStream();
            req.writeBytes(("*" + args.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
            for (Object a : args) {
                byte[] b = a instanceof byte[] bytes ? bytes : String.valueOf(a).getBytes(StandardCharsets.UTF_8);
                req.writeBytes(("$" + b.length + "\r\n").getBytes(StandardCharsets.US_ASCII));
                req.writeBytes(b);
                req.writeBytes("\r\n".getBytes(StandardCharsets.US_ASCII));
            }
            out.write(req.toByteArray());
            out.flush();
            return readReply(new BufferedInputStream(s.getInputStream()));
        } catch (IOException e) {
            throw new IllegalStateException("redis command " + List.of(args) + " failed: " + e, e);
        }
    }

    /**
     * Opens a tier on this server and waits (up to 60 s) until a put, get, batch and remove all succeed: a cold
     * JVM's first Lettuce connection loads Netty and can take seconds on a loaded machine.
     */
    public RedisTier openWarm(RedisTierConfig config) {
        RedisTier t = RedisTier.connect(config);
        BlockKey warm = new BlockKey(-1, -1);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!(t.put(warm, new byte[1]) && t.get(warm).isPresent() && t.getAll(List.of(warm, warm)).get(1).isPresent()
                && t.remove(warm))) {
            if (System.nanoTime() > deadline) {
                t.close();
                throw new AssertionError("the Redis tier did not work within 60 s against " + uri() + ": " + t.stats());
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
        return t;
    }

    /** GET as raw bytes, or null. */
    public byte[] get(String key) {
        return (byte[]) command("GET", key);
    }

    /** The keys matching {@code pattern} (KEYS: fine for a test server). */
    @SuppressWarnings("unchecked")
    public List<String> keys(String pattern) {
        List<String> out = new ArrayList<>();
        for (Object o : (List<Object>) command("KEYS", pattern)) {
            out.add(new String((byte[]) o, StandardCharsets.UTF_8));
        }
        return out;
    }

    @Override
    public void close() {
        kill();
        try (var files = Files.walk(dir)) {
            files.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            // a temp dir left behind is harmless
        }
    }

    private void launch(int p) {
        List<String> cmd = new ArrayList<>(List.of(binary, "--port", Integer.toString(p), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", dir.toString(), "--daemonize", "no",
                "--logfile", dir.resolve("redis.log").toString()));
        cmd.addAll(extraArgs);
        try {
            process = new ProcessBuilder(cmd).redirectErrorStream(true)
                    .redirectOutput(dir.resolve("redis.out").toFile()).start();
        } catch (IOException e) {
            throw new AssertionError("cannot start '" + binary + "' (" + e.getMessage() + "): the Redis tier tests "
                    + "need a real redis-server; ./kvslab test installs it (.ci/redis.sh), or apt-get install "
                    + "redis-server", e);
        }
        port = p;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("redis-server exited at start on port " + p + ": " + log());
            }
            try {
                if ("PONG".equals(command("PING"))) {
                    return;
                }
            } catch (IllegalStateException e) {
                // not listening yet
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        kill();
        throw new IllegalStateException("redis-server did not answer PING on port " + p + ": " + log());
    }

    private String log() {
        try {
            Path f = dir.resolve("redis.log");
            String s = Files.exists(f) ? Files.readString(f) : Files.readString(dir.resolve("redis.out"));
            return s.length() > 2000 ? s.substring(s.length() - 2000) : s;
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    private static int freePort() {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException("no free loopback port", e);
        }
    }

    private static Object readReply(InputStream in) throws IOException {
        int type = in.read();
        String line = readLine(in);
        switch (type) {
            case '+':
                return line;
            case '-':
                throw new IOException("redis error: " + line);
            case ':':
                return Long.parseLong(line);
            case '$': {
                int n = Integer.parseInt(line);
                if (n < 0) {
                    return null;
                }
                byte[] b = in.readNBytes(n);
                in.readNBytes(2);
                return b;
            }
            case '*': {
                int n = Integer.parseInt(line);
                if (n < 0) {
                    return null;
                }
                List<Object> items = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    items.add(readReply(in));
                }
                return items;
            }
            default:
                throw new IOException("unexpected RESP type " + type + ": " + line);
        }
    }

    private static String readLine(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int c;
        while ((c = in.read()) != -1) {
            if (c == '\r') {
                in.read();
                break;
            }
            b.write(c);
        }
        return b.toString(StandardCharsets.US_ASCII);
    }
}
