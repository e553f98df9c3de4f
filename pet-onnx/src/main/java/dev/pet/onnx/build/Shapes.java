package dev.pet.onnx.build;

import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.DataType;
import java.util.ArrayList;
import java.util.Collections;
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

    /**
     * The product of dimensions: fixed when all are fixed; symbolic when all are known, named by {@link #symbolic}
     * (so {@code [batch, sequence, 64]} flattened to rows gives {@code batch*sequence} wherever it is computed, and
     * values that share it are known to match); unknown otherwise.
     */
    static Dim product(List<Dim> dims) {
        long coefficient = 1;
        List<String> factors = new ArrayList<>();
        for (Dim d : dims) {
            if (d.isFixed()) {
                coefficient *= d.value();
            } else if (d.isSymbolic()) {
                factors.addAll(factors(d));
            } else {
                return Dim.unknown();
            }
        }
        return symbolic(coefficient, factors);
    }

    /**
     * {@code total / divisor} as a dimension, when {@code divisor}'s symbols all occur in {@code total} and the fixed
     * parts divide exactly (the {@code -1} of a Reshape); unknown otherwise.
     */
    static Dim quotient(Dim total, Dim divisor) {
        if (!total.isFixed() && !total.isSymbolic() || !divisor.isFixed() && !divisor.isSymbolic()) {
            return Dim.unknown();
        }
        List<String> left = new ArrayList<>(factors(total));
        for (String f : factors(divisor)) {
            if (!left.remove(f)) {
                return Dim.unknown();
            }
        }
        long num = coefficient(total);
        long den = coefficient(divisor);
        if (den == 0 || num % den != 0) {
            return Dim.unknown();
        }
        return symbolic(num / den, left);
    }

    /**
     * A fixed dimension when there are no symbols, else the symbol {@code c*a*b} (coefficient first when not 1,
     * symbols sorted): one canonical name per product.
     */
    private static Dim symbolic(long coefficient, List<String> factors) {
        if (factors.isEmpty()) {
            return Dim.of(coefficient);
        }
        if (coefficient == 0) {
            return Dim.of(0);
        }
        List<String> sorted = new ArrayList<>(factors);
        Collections.sort(sorted);
        String name = String.join("*", sorted);
        return Dim.symbol(coefficient == 1 ? name : coefficient + "*" + name);
    }

    /** The symbols of a dimension's product name (none for a fixed dimension). */
    private static List<String> factors(Dim d) {
        if (d.isFixed()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        for (String f : d.param().split("\\*")) {
            if (!isNumber(f)) {
                out.add(f);
            }
        }
        return out;
    }

    private static long coefficient(Dim d) {
        if (d.isFixed()) {
            return d.value();
        }
        long c = 1;
        for (String f : d.param().split("\\*")) {
            if (isNumber(f)) {
                c *= Long.parseLong(f);
            }
        }
        return c;
    }

    private static boolean isNumber(String s) {
        return !s.isEmpty() && s.length() < 19 && s.chars().allMatch(Character::isDigit);
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
