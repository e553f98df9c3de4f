package dev.pet.adapter;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PeftFiles;
import dev.pet.llama.LlamaProvider;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Bottleneck adapters carry the family's own module names: the parent of the attention output projection and of the
 * MLP output projection, plus {@code .adapter}, in the saved adapter file as in the graph.
 */
class BottleneckNamesTest {
    @TempDir
    Path dir;

    private static List<String> savedNames(PretrainedModel base, Path dir) {
        BottleneckAdapter a = new BottleneckAdapter();
        PetModel pet = a.getPetModel(base, a.parseConfig(Map.of("bottleneck_size", 4)));
        a.saveAdapter(pet, pet.trainableTensors(), dir);
        assertEquals(new TreeSet<>(pet.trainables()), new TreeSet<>(PeftFiles.tensors(dir).keySet()));
        return List.copyOf(new TreeSet<>(PeftFiles.tensors(dir).keySet()));
    }

    private static List<String> expected(String attention, String mlp, int layers) {
        TreeSet<String> names = new TreeSet<>();
        for (int l = 0; l < layers; l++) {
            for (String module : List.of(attention, mlp)) {
                for (String t : List.of("down.weight", "down.bias", "up.weight", "up.bias")) {
                    names.add(module.replace("N", Integer.toString(l)) + ".adapter." + t);
                }
            }
        }
        return List.copyOf(names);
    }

    @Test
    void aLlamaAdapterIsNamedAfterLlamaModules() {
        PretrainedModel llama = new LlamaProvider().load(new ModelRequest("llama-tiny", Map.of(), 1));
        assertEquals(expected("model.layers.N.self_attn", "model.layers.N.mlp", 2),
                savedNames(llama, dir.resolve("llama")));
    }

    @Test
    void aGpt2AdapterIsNamedAfterGpt2Modules() {
        assertEquals(expected("transformer.h.N.attn", "transformer.h.N.mlp", 2),
                savedNames(TinyGpt2.BASE, dir.resolve("gpt2")));
    }
}
