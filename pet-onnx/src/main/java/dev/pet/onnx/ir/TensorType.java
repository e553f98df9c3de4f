package dev.pet.onnx.ir;

import dev.pet.onnx.tensor.DataType;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The static type of a value: element type (null when unknown) and shape ({@code dims == null} when even the
 * rank is unknown).
 */
public record TensorType(DataType dataType, List<Dim> dims) {
    public TensorType {
        dims = dims == null ? null : List.copyOf(dims);
    }

    public static TensorType unknown() {
        return new TensorType(null, null);
    }

    public static TensorType of(DataType type, long... shape) {
        List<Dim> d = new ArrayList<>(shape.length);
        for (long s : shape) {
            d.add(s < 0 ? Dim.unknown() : Dim.of(s));
        }
        return new TensorType(type, d);
    }

    /** A type whose dimensions are fixed numbers or named symbols ({@code Long} or {@code String} entries). */
    public static TensorType symbolic(DataType type, Object... dims) {
        List<Dim> d = new ArrayList<>(dims.length);
        for (Object o : dims) {
            d.add(o instanceof String s ? Dim.symbol(s) : o == null ? Dim.unknown()
                    : Dim.of(((Number) o).longValue()));
        }
        return new TensorType(type, d);
    }

    public boolean hasRank() {
        return dims != null;
    }

    public int rank() {
        if (dims == null) {
            throw new IllegalStateException("rank unknown");
        }
        return dims.size();
    }

    /** True when every dimension is a fixed number. */
    public boolean isStatic() {
        return dims != null && dims.stream().allMatch(Dim::isFixed);
    }

    /** The fixed shape; fails unless {@link #isStatic()}. */
    public long[] shape() {
        if (!isStatic()) {
            throw new IllegalStateException("shape is not static: " + this);
        }
        return dims.stream().mapToLong(Dim::value).toArray();
    }

    public TensorType withDataType(DataType type) {
        return new TensorType(type, dims);
    }

    @Override
    public String toString() {
        return Objects.toString(dataType, "?") + (dims == null ? "[*]" : dims.toString());
    }
}
