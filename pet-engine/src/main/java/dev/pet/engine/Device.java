package dev.pet.engine;

import java.util.Locale;
import java.util.Objects;

/**
 * Where a graph runs: the CPU, or a CUDA device by ordinal. Written as {@code cpu}, {@code cuda} (device 0) or
 * {@code cuda:N}.
 *
 * @param kind  the execution provider family
 * @param index the CUDA device ordinal; 0 for the CPU
 */
public record Device(Kind kind, int index) {
    /** Execution provider families. */
    public enum Kind { CPU, CUDA }

    /** The CPU. */
    public static final Device CPU = new Device(Kind.CPU, 0);

    public Device {
        Objects.requireNonNull(kind, "kind");
        if (index < 0) {
            throw new EngineException("device index must be >= 0, found " + index);
        }
        if (kind == Kind.CPU && index != 0) {
            throw new EngineException("the cpu device has no index, found cpu:" + index);
        }
    }

    /** A CUDA device by ordinal. */
    public static Device cuda(int index) {
        return new Device(Kind.CUDA, index);
    }

    /** Parses {@code cpu}, {@code cuda} or {@code cuda:N} (case-insensitive, surrounding blanks ignored). */
    public static Device parse(String text) {
        Objects.requireNonNull(text, "text");
        String s = text.strip().toLowerCase(Locale.ROOT);
        if (s.equals("cpu")) {
            return CPU;
        }
        if (s.equals("cuda")) {
            return cuda(0);
        }
        if (s.startsWith("cuda:")) {
            String n = s.substring("cuda:".length());
            if (!n.isEmpty() && n.length() <= 4 && n.chars().allMatch(c -> c >= '0' && c <= '9')) {
                return cuda(Integer.parseInt(n));
            }
            throw new EngineException("invalid device '" + text + "': the CUDA device index must be a number "
                    + "from 0 to 9999, as in cuda:0");
        }
        throw new EngineException("invalid device '" + text + "': expected cpu, cuda or cuda:N");
    }

    @Override
    public String toString() {
        return kind == Kind.CPU ? "cpu" : "cuda:" + index;
    }
}
