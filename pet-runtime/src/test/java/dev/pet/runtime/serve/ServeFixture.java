package dev.pet.runtime.serve;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetAdapters;
import dev.pet.api.PetModel;
import dev.pet.onnx.io.OrtAdapterFile;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.cli.PetCli;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginRegistry;
import dev.pet.runtime.train.DefaultPetEngine;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** gpt2-tiny with LoRA r=4 served with adapters of large random factors, written as pet export writes them. */
final class ServeFixture {
    private ServeFixture() {
    }

    static final String CONFIG = """
            seed: 3
            model:
              model_config: {checkpoint_name_or_path: gpt2-tiny, pet_config: {pet_type: lora, lora_rank: 4}}
            """;

    static RunEnvironment env() {
        return new RunEnvironment(PluginRegistry.discover(dev.pet.runtime.plugin.PluginKind.ALL, ServeFixture.class.getClassLoader(),
                null), new TrainingListener() { }, TokenCache.defaultCache(), new PrintStream(System.out));
    }

    /** Writes adapters {@code names} into {@code dir}: the first as NAME.onnx_adapter, the rest as NAME/ exports. */
    static Path adapters(Path dir, List<String> names) throws IOException {
        PetAdapters registry = PetAdapters.discover(ServeFixture.class.getClassLoader());
        PetModel pet = registry.getPetModel(registry.getPretrainedModel("gpt2", new ModelRequest("gpt2-tiny", Map.of(),
                3, ModelRequest.GraphForm.GENERATION)), "gpt2", null, Map.of("pet_type", "lora", "lora_rank", 4));
        Path adapters = Files.createDirectories(dir.resolve("adapters"));
        for (int k = 0; k < names.size(); k++) {
            String name = names.get(k);
            Random rnd = new Random(name.hashCode());
            Map<String, Tensor> values = new LinkedHashMap<>();
            pet.trainableTensors().forEach((n, t) -> {
                float[] v = new float[(int) t.elementCount()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (0.5 * rnd.nextGaussian());
                }
                values.put(n, Tensor.ofFloats(v, t.shape()));
            });
            Path target = k == 0 ? adapters.resolve(name + ServedModel.ADAPTER_SUFFIX)
                    : Files.createDirectories(adapters.resolve(name)).resolve(DefaultPetEngine.ORT_ADAPTER);
            OrtAdapterFile.write(target, values, 1, 1);
        }
        return adapters;
    }

    static ServedModel served(Path adapters) {
        RunConfig config = RunConfigLoader.parse(CONFIG, "serve test", List.of());
        return new DefaultPetEngine().openServed(config, adapters, env());
    }
}
