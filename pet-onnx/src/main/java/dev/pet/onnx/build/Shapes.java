package dev.pet.onnx.build;

import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import java.util.ArrayList;
import java.util.List;

/** Small helpers shared by the shape rule families. */
final class Shapes {
    private Shapes() {
    }

    /** The type of input {@code i}; unknown when the input is absent. */
    static TensorType in(Node n, int i) {
        Value v = n.input(i);
        return v == null ? TensorType.unknown() : v.type();
    }

    static List<TensorType> one(TensorType t) {
        return List.of(t);
    }

    /** Element type known, rank unknown. */
    static TensorType anyShape(DataType dt) {
        return new TensorType(dt, null);
    }

    /** {@code rank} unknown dimensions. */
    static List<Dim> unknownDims(long rank) {
        List<Dim> d = new ArrayList<>();
        for (long i = 0; i < rank; i++) {
            d.add(Dim.unknown());
        }
        return d;
    }

    static int axis(long axis, int rank) {
        return (int) (axis < 0 ? axis + rank : axis);
    }

    static Dim product(List<Dim> dims) {
        long p = 1;
        for (Dim d : dims) {
            if (!d.isFixed()) {
                return Dim.unknown();
            }
            p *= d.value();
        }
        return Dim.of(p);
    }

    /** Integer values given as an input (later opsets) or, when {@code input} is absent, null. */
    static long[] inputInts(Node n, int input) {
        return n.inputCount() > input && n.input(input) != null ? ShapeInference.constantInts(n.input(input)) : null;
    }

    /** Whether input {@code input} is present but not a constant (its values unknown). */
    static boolean dynamicInput(Node n, int input) {
        return n.inputCount() > input && n.input(input) != null && ShapeInference.constantInts(n.input(input)) == null;
    }
}
