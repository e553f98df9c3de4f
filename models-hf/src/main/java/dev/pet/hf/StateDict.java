package dev.pet.hf;

import dev.pet.api.PetException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * The parameters of a model under Hugging Face state-dict names, with the config they belong to: what every model
 * family's weights share (lookup that names a missing tensor, replacement, shape checks, seeded initialisation).
 * A family's weights class extends it with its own names, shapes and checks. Immutable.
 *
 * @param <C> the family's config
 */
public abstract class StateDict<C> {
    private final String family;
    private final C config;
    private final Map<String, Tensor> tensors;

    /**
     * @param family  the family as error messages name it ("GPT-2", "Llama")
     * @param tensors by state-dict name, in state-dict order
     */
    protected StateDict(String family, C config, Map<String, Tensor> tensors) {
        this.family = Objects.requireNonNull(family, "family");
        this.config = Objects.requireNonNull(config, "config");
        this.tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
    }

    public C config() {
        return config;
    }

    /** All tensors by state-dict name, in state-dict order. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** The tensor with this name; fails naming it when absent. */
    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new PetException(family + " weights have no tensor '" + name + "'");
        }
        return t;
    }

    /** The tensors with one replaced, for a family's {@code with}; fails naming the tensor when absent. */
    protected Map<String, Tensor> replacing(String name, Tensor tensor) {
        Map<String, Tensor> m = new LinkedHashMap<>(tensors);
        if (!m.containsKey(name)) {
            throw new PetException(family + " weights have no tensor '" + name + "'");
        }
        m.put(name, tensor);
        return m;
    }

    /** Fails, naming the checkpoint and the tensor, when a tensor's shape is not the one its config gives. */
    public static void checkShape(String source, String name, long[] expected, Tensor t) {
        if (!Arrays.equals(expected, t.shape())) {
            throw new PetException(source + ": tensor '" + name + "' has shape " + Arrays.toString(t.shape())
                    + ", expected " + Arrays.toString(expected) + " from the config");
        }
    }

    /**
     * How one tensor starts: every element {@code fill}, plus normal(0, {@code std}) noise when {@code std} > 0.
     */
    public record Init(double fill, double std) {
        public static Init constant(double value) {
            return new Init(value, 0);
        }

        public static Init normal(double std) {
            return new Init(0, std);
        }
    }

    /**
     * Seeded random float32 tensors in {@code shapes} order, as a family's {@code _init_weights} makes them. Each tensor
     * draws from its own stream derived from {@code seed} and its name, so the result does not depend on thread
     * scheduling (tensors are filled in parallel).
     */
    public static Map<String, Tensor> seededRandom(Map<String, long[]> shapes, long seed, Function<String, Init> init) {
        Map<String, Tensor> out = Collections.synchronizedMap(new LinkedHashMap<>());
        shapes.keySet().parallelStream().forEach(name -> {
            long[] shape = shapes.get(name);
            Init how = init.apply(name);
            int n = Math.toIntExact(Tensor.checkedElementCount(shape));
            ByteBuffer bytes = ByteBuffer.allocate(Math.multiplyExact(n, 4)).order(ByteOrder.LITTLE_ENDIAN);
            FloatBuffer fb = bytes.asFloatBuffer();
            if (how.std() > 0) {
                SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + name.hashCode());
                for (int i = 0; i < n; i++) {
                    fb.put((float) (how.fill() + r.nextGaussian() * how.std()));
                }
            } else {
                for (int i = 0; i < n; i++) {
                    fb.put((float) how.fill());
                }
            }
            out.put(name, Tensor.of(DataType.FLOAT, shape, bytes));
        });
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        shapes.keySet().forEach(k -> ordered.put(k, out.get(k)));
        return ordered;
    }
}
