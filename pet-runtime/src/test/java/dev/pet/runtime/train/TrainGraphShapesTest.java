package dev.pet.runtime.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.llama.LlamaProvider;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.optim.OptimizerSpec;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The LoRA train-step graphs of both model families decide every broadcast of their backward pass when the graph is
 * built: shape inference keeps the named sizes ({@code batch}, {@code sequence}, {@code batch*sequence}) through
 * the models' reshapes, so no gradient sums over axes found at run time ({@code Shape → Equal → NonZero →
 * ReduceSum}, a chain of small nodes per broadcast that cost SmolLM2-135M's step about 900 of each).
 */
class TrainGraphShapesTest {
    @ParameterizedTest
    @CsvSource({"llama-tiny,q_proj;v_proj", "qwen2-tiny,q_proj;v_proj", "gpt2-tiny,c_attn"})
    void backwardBroadcastsAreDecidedWhenTheGraphIsBuilt(String preset, String targets) {
        PretrainedModel base = preset.startsWith("gpt2")
                ? new Gpt2Provider().load(new ModelRequest(preset, Map.of(), 1))
                : new LlamaProvider().load(new ModelRequest(preset, Map.of(), 1));
        LoraAdapter lora = new LoraAdapter();
        PetModel pet = lora.getPetModel(base, lora.parseConfig(Map.of("r", 4, "target_modules",
                List.of(targets.split(";")))));
        var a = base.anatomy();
        var graphs = GraphTrainStep.graphs(pet.model(), new GraphTrainStep.ModelIo(a.inputIds(), a.attentionMask(),
                a.logits()), pet.trainables(), OptimizerSpec.adamW());
        Map<String, Integer> ops = new TreeMap<>();
        for (Node n : graphs.trainStep().model().graph().nodes()) {
            ops.merge(n.opType(), 1, Integer::sum);
        }
        assertEquals(0, ops.getOrDefault("NonZero", 0), preset + ": " + ops);
        assertEquals(0, ops.getOrDefault("Equal", 0), preset + ": " + ops);
        // Shapes left: the attention mask's ones, positions, and reshapes of [batch·sequence, n] gradients back to
        // [batch, sequence, ...] (at most a handful a layer; SmolLM2's graph had 34 a layer before).
        int layers = a.layers().size();
        assertTrue(ops.getOrDefault("Shape", 0) <= 4 + 8 * layers, preset + ": " + ops);
    }
}
