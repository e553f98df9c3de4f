package dev.pet.api;

import dev.pet.onnx.io.ScratchFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Size checks made before anything is allocated, so that an absurd size in a config ({@code lora_rank: 1e6},
 * {@code n_layer: 1e9}) is one clear error saying what was asked and what fits, never an
 * {@link OutOfMemoryError}, an overflow or a hang. Plugins compute how many parameters a config asks for in
 * overflow-safe arithmetic ({@link #multiply}) and call {@link #requireTrainable} or {@link #requireWeights}.
 */
public final class MemoryBudget {
    /**
     * Bytes one float32 trainable parameter costs while training: its value, gradient and two AdamW moments, the
     * state double-buffered by the train step, and the initialiser's copy.
     */
    public static final long BYTES_PER_TRAINABLE = 32;
    /**
     * Bytes one generated float32 weight costs: seeded random weights are streamed to a scratch file that ONNX
     * Runtime maps (never whole on the heap), so they are bounded by disk, not by {@code -Xmx}.
     */
    public static final long BYTES_PER_WEIGHT = 4;

    private MemoryBudget() {
    }

    /** What this JVM may allocate: {@code -Xmx} (direct buffers default to the same limit). */
    public static long available() {
        return Runtime.getRuntime().maxMemory();
    }

    /** {@code a * b}, or {@link Long#MAX_VALUE} when it overflows (a size that large never fits anyway). */
    public static long multiply(long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            return Long.MAX_VALUE;
        }
    }

    /** {@code a + b}, saturating at {@link Long#MAX_VALUE}. */
    public static long add(long a, long b) {
        long s = a + b;
        return ((a ^ s) & (b ^ s)) < 0 ? Long.MAX_VALUE : s;
    }

    /**
     * Refuses {@code parameters} trainable parameters when training them cannot fit this JVM. {@code asked} says
     * what the config asked ({@code "lora_rank 1000000 on 24 modules"}); {@code perUnit} is the parameter count of
     * one unit of the size being checked, so the message can say how many units fit ({@code "lora_rank"}).
     */
    public static void requireTrainable(String asked, long parameters, String unitName, long perUnit) {
        require(asked, parameters, BYTES_PER_TRAINABLE, "trainable parameters", unitName, perUnit);
    }

    /**
     * Refuses a model of {@code parameters} generated weights whose scratch file ({@link ScratchFile#folder()})
     * cannot fit on its file system.
     */
    public static void requireWeights(String asked, long parameters, String unitName, long perUnit) {
        Path folder = ScratchFile.folder();
        long free = usableSpace(folder);
        long bytes = multiply(parameters, BYTES_PER_WEIGHT);
        if (bytes <= free) {
            return;
        }
        long fits = perUnit > 0 ? free / BYTES_PER_WEIGHT / perUnit : 0;
        throw new PetException(asked + " makes " + count(parameters) + " weights, about " + size(bytes) + " ("
                + BYTES_PER_WEIGHT + " bytes each, written to " + folder + "), but its file system has " + size(free)
                + " free" + (unitName == null ? "" : "; at most " + unitName + " " + fits + " fits"));
    }

    /** Usable bytes on the file system of {@code folder}, or of its nearest existing parent. */
    static long usableSpace(Path folder) {
        for (Path p = folder; p != null; p = p.getParent()) {
            if (Files.isDirectory(p)) {
                return p.toFile().getUsableSpace();
            }
        }
        return 0;
    }

    private static void require(String asked, long parameters, long bytesEach, String what, String unitName,
            long perUnit) {
        long bytes = multiply(parameters, bytesEach);
        long available = available();
        if (bytes <= available) {
            return;
        }
        long fits = perUnit > 0 ? available / bytesEach / perUnit : 0;
        throw new PetException(asked + " makes " + count(parameters) + " " + what + ", about " + size(bytes)
                + " (" + bytesEach + " bytes each), but this JVM may use " + size(available) + " (-Xmx)"
                + (unitName == null ? "" : "; at most " + unitName + " " + fits + " fits"));
    }

    private static String count(long n) {
        return n == Long.MAX_VALUE ? "more than 9.2e18" : String.format(Locale.ROOT, "%,d", n);
    }

    static String size(long bytes) {
        if (bytes == Long.MAX_VALUE) {
            return "more than 8 EiB";
        }
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
    }
}
