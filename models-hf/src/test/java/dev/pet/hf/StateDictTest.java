package dev.pet.hf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import dev.pet.onnx.io.ScratchFile;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class StateDictTest {
    /**
     * The values the heap initialisation made before weights were streamed to a scratch file, written out here
     * independently: one SplittableRandom per tensor seeded from the seed and the name, filled in order.
     */
    private static float[] reference(String name, long n, long seed, StateDict.Init init) {
        float[] out = new float[(int) n];
        SplittableRandom r = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + name.hashCode());
        for (int i = 0; i < n; i++) {
            out[i] = init.std() > 0 ? (float) (init.fill() + r.nextGaussian() * init.std()) : (float) init.fill();
        }
        return out;
    }

    @Test
    void seededRandomTensorsAreScratchFileRegionsWithTheHeapInitialisationsValues() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("embed.weight", new long[] {300, 1000}); // more than one generation chunk
        shapes.put("norm.weight", new long[] {7});
        shapes.put("proj.bias", new long[] {5});
        shapes.put("proj.weight", new long[] {3, 11});
        java.util.function.Function<String, StateDict.Init> init = name -> name.endsWith("norm.weight")
                ? StateDict.Init.constant(1) : name.endsWith(".bias") ? StateDict.Init.constant(0)
                : StateDict.Init.normal(0.02);
        Map<String, Tensor> t = StateDict.seededRandom(shapes, 42, init);
        assertEquals(List.copyOf(shapes.keySet()), List.copyOf(t.keySet()));
        for (String name : shapes.keySet()) {
            Tensor x = t.get(name);
            assertArrayEquals(shapes.get(name), x.shape());
            FileData fd = assertInstanceOf(FileData.class, x.data(), name);
            assertEquals(ScratchFile.folder(), fd.file().getParent());
            assertArrayEquals(reference(name, x.elementCount(), 42, init.apply(name)), x.toFloatArray(), name);
        }
    }
}
