package dev.pet.onnx.ir;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A node attribute. Scalars, lists and tensors are typed; subgraphs and the rarer kinds (sparse tensors, type
 * protos, references to function attributes) are kept as their protobuf message in {@link Kind#RAW} so that
 * nothing is lost on a round trip.
 */
public record Attribute(String name, Kind kind, Object value) {
    /** Attribute kinds, following {@code AttributeProto.AttributeType}. */
    public enum Kind { FLOAT, INT, STRING, TENSOR, FLOATS, INTS, STRINGS, TENSORS, RAW }

    public Attribute {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(value, "value");
        switch (kind) {
            case FLOATS -> value = ((float[]) value).clone();
            case INTS -> value = ((long[]) value).clone();
            case STRINGS -> value = List.copyOf((List<?>) value);
            case TENSORS -> value = List.copyOf((List<?>) value);
            default -> { }
        }
    }

    public static Attribute of(String name, float v) {
        return new Attribute(name, Kind.FLOAT, v);
    }

    public static Attribute of(String name, long v) {
        return new Attribute(name, Kind.INT, v);
    }

    public static Attribute of(String name, String v) {
        return new Attribute(name, Kind.STRING, v);
    }

    public static Attribute of(String name, Tensor v) {
        return new Attribute(name, Kind.TENSOR, v);
    }

    public static Attribute of(String name, float[] v) {
        return new Attribute(name, Kind.FLOATS, v);
    }

    public static Attribute of(String name, long... v) {
        return new Attribute(name, Kind.INTS, v);
    }

    public static Attribute ofStrings(String name, List<String> v) {
        return new Attribute(name, Kind.STRINGS, v);
    }

    public static Attribute ofTensors(String name, List<Tensor> v) {
        return new Attribute(name, Kind.TENSORS, v);
    }

    public float asFloat() {
        return switch (kind) {
            case FLOAT -> (Float) value;
            case INT -> (Long) value;
            default -> throw wrongKind("FLOAT");
        };
    }

    public long asInt() {
        if (kind != Kind.INT) {
            throw wrongKind("INT");
        }
        return (Long) value;
    }

    public String asString() {
        if (kind != Kind.STRING) {
            throw wrongKind("STRING");
        }
        return (String) value;
    }

    public Tensor asTensor() {
        if (kind != Kind.TENSOR) {
            throw wrongKind("TENSOR");
        }
        return (Tensor) value;
    }

    public float[] asFloats() {
        if (kind != Kind.FLOATS) {
            throw wrongKind("FLOATS");
        }
        return ((float[]) value).clone();
    }

    public long[] asInts() {
        if (kind != Kind.INTS) {
            throw wrongKind("INTS");
        }
        return ((long[]) value).clone();
    }

    @SuppressWarnings("unchecked")
    public List<String> asStrings() {
        if (kind != Kind.STRINGS) {
            throw wrongKind("STRINGS");
        }
        return (List<String>) value;
    }

    @SuppressWarnings("unchecked")
    public List<Tensor> asTensors() {
        if (kind != Kind.TENSORS) {
            throw wrongKind("TENSORS");
        }
        return (List<Tensor>) value;
    }

    private OnnxException wrongKind(String expected) {
        return new OnnxException("attribute '" + name + "' is " + kind + ", expected " + expected);
    }

    @Override
    public String toString() {
        String v = switch (kind) {
            case FLOATS -> Arrays.toString((float[]) value);
            case INTS -> Arrays.toString((long[]) value);
            case RAW -> "<" + value.getClass().getSimpleName() + ">";
            default -> String.valueOf(value);
        };
        return name + "=" + v;
    }
}
