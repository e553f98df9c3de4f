package dev.pet.onnx.ir;

/**
 * One dimension of a value's shape: a fixed size, a named symbol ({@code batch}, {@code sequence}) or unknown.
 */
public record Dim(long value, String param) {
    private static final Dim UNKNOWN = new Dim(-1, null);

    public Dim {
        if (value < -1) {
            throw new IllegalArgumentException("dimension " + value);
        }
        if (value >= 0 && param != null) {
            throw new IllegalArgumentException("a dimension is either fixed or symbolic");
        }
    }

    public static Dim of(long value) {
        if (value < 0) {
            throw new IllegalArgumentException("negative dimension " + value);
        }
        return new Dim(value, null);
    }

    public static Dim symbol(String name) {
        return new Dim(-1, name);
    }

    public static Dim unknown() {
        return UNKNOWN;
    }

    public boolean isFixed() {
        return value >= 0;
    }

    public boolean isSymbolic() {
        return param != null;
    }

    @Override
    public String toString() {
        return isFixed() ? Long.toString(value) : param != null ? param : "?";
    }
}
