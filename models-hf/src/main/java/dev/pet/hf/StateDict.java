package dev.pet.hf;

import dev.pet.api.PetException;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.onnx.io.ScratchFile;
import dev.pet.onnx.tensor.TensorData;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.function.Consumer;
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
     * scheduling. The values are generated straight into a {@link ScratchFile} (several tensors in parallel, each in
     * chunks), and the tensors returned are regions of it: no tensor is ever whole on the heap, and ONNX Runtime
     * memory-maps them like a checkpoint's.
     */
    public static Map<String, Tensor> seededRandom(Map<String, long[]> shapes, long seed, Function<String, Init> init) {
        List<Tensor> generated = new ArrayList<>();
        shapes.forEach((name, shape) -> {
            long n = Tensor.checkedElementCount(shape);
            generated.add(new Tensor(DataType.FLOAT, shape, new SeededFloats(n, seed * 0x9E3779B97F4A7C15L
                    + name.hashCode(), init.apply(name))));
        });
        List<Tensor> stored = ScratchFile.create("random").append(generated);
        Map<String, Tensor> out = new LinkedHashMap<>();
        int i = 0;
        for (String name : shapes.keySet()) {
            out.put(name, stored.get(i++));
        }
        return out;
    }

    /**
     * {@code count} float32 values {@code fill + normal(0, std)} from one {@link SplittableRandom} seeded with
     * {@code seed} (just {@code fill} when std is 0), generated when written, chunk by chunk.
     */
    private record SeededFloats(long count, long seed, Init init) implements TensorData {
        private static final int CHUNK = 1 << 18;

        @Override
        public long byteSize() {
            return count * 4;
        }

        @Override
        public ByteBuffer asByteBuffer() {
            ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(byteSize())).order(ByteOrder.LITTLE_ENDIAN);
            generate(chunk -> b.put(chunk));
            return b.flip().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        }

        @Override
        public void writeTo(WritableByteChannel out) throws IOException {
            try {
                generate(chunk -> {
                    try {
                        while (chunk.hasRemaining()) {
                            out.write(chunk);
                        }
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                });
            } catch (UncheckedIOException e) {
                throw e.getCause();
            }
        }

        private void generate(Consumer<ByteBuffer> sink) {
            SplittableRandom r = new SplittableRandom(seed);
            ByteBuffer chunk = ByteBuffer.allocateDirect(CHUNK * 4).order(ByteOrder.LITTLE_ENDIAN);
            float fill = (float) init.fill();
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(CHUNK, count - done);
                chunk.clear();
                for (int i = 0; i < n; i++) {
                    chunk.putFloat(init.std() > 0 ? (float) (init.fill() + r.nextGaussian() * init.std()) : fill);
                }
                sink.accept(chunk.flip());
                done += n;
            }
        }
    }
}
