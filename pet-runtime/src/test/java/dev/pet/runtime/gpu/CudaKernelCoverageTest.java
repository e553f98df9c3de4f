package dev.pet.runtime.gpu;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.pet.adapter.BitFitAdapter;
import dev.pet.adapter.BottleneckAdapter;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetAdapter;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.Quantization;
import dev.pet.gpt2.Gpt2Graph;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.optim.LossChunks;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.onnx.tensor.DataType;
import dev.pet.prefix.PrefixTuningAdapter;
import dev.pet.llama.LlamaGraph;
import dev.pet.llama.LlamaProvider;
import dev.pet.runtime.train.BlockBoundaries;
import dev.pet.runtime.train.GraphTrainStep;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * GPU readiness without a GPU: every node of the graphs PET runs (train steps of each PET algorithm, with dropout,
 * gradient accumulation and per-block recomputation, their evaluation graphs, and the generation graphs, for GPT-2,
 * Llama and Qwen2, and a LoRA step on a quantized base) must have a kernel in ONNX
 * Runtime's CUDA execution provider for its domain, opset and input element types, or ORT would place it on the
 * CPU and copy tensors across PCIe every step. The registry is ORT's published operator-kernel table
 * ({@code cuda-kernels.md}, rows copied from its CUDAExecutionProvider section; the source is named in the file).
 */
class CudaKernelCoverageTest {
    private static CudaKernelTable table;
    private static Map<String, Model> graphs;

    @BeforeAll
    static void build() throws IOException {
        try (InputStream in = CudaKernelCoverageTest.class.getResourceAsStream("cuda-kernels.md")) {
            table = CudaKernelTable.parse(new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
        PretrainedModel base = new Gpt2Provider().load(new ModelRequest("gpt2-tiny", Map.of("seq_length", 16), 3));
        graphs = new LinkedHashMap<>();
        add("lora", new LoraAdapter(), base, Map.of("r", 2, "lora_dropout", 0.1,
                "target_modules", ".*(c_attn|c_proj|c_fc)"), OptimizerSpec.adamW());
        add("prefix_tuning", new PrefixTuningAdapter(), base, Map.of("num_virtual_tokens", 3), OptimizerSpec.adamW());
        add("adapter", new BottleneckAdapter(), base, Map.of(), OptimizerSpec.adamW());
        add("bitfit", new BitFitAdapter(), base, Map.of(), OptimizerSpec.adamW());
        var w = Gpt2Provider.loadWeights(new ModelRequest("gpt2-tiny", Map.of("seq_length", 16), 3));
        graphs.put("generate-first", Gpt2Graph.build(w, CausalLmGraphOptions.inference()
                .withKvCache(CausalLmGraphOptions.KvCache.PRESENT)).model());
        graphs.put("generate-next", Gpt2Graph.build(w, CausalLmGraphOptions.inference()).model());
        add("lora-recompute", new LoraAdapter(), base, Map.of("r", 2, "target_modules", ".*(c_attn|c_fc)"),
                OptimizerSpec.adamW(), true);
        // a quantized base: MatMulNBits forward and backward (the transposed copies), the lookup through
        // GatherBlockQuantized; 4 bits asymmetric, so zero points are inputs too
        QuantSpec q4 = new QuantSpec(4, 32, false, QuantSpec.Compute.INT8, QuantSpec.Kernel.MATMUL_NBITS);
        add("lora-quantized", new LoraAdapter(), new Quantization(q4, null, true, true).apply(base, true).model(),
                Map.of("r", 2, "target_modules", ".*c_attn"), OptimizerSpec.adamW());

        // Llama family (RMSNorm, RoPE, grouped-query attention, SwiGLU), Qwen2 (q/k/v biases)
        for (String preset : List.of("llama-tiny", "qwen2-tiny")) {
            ModelRequest request = new ModelRequest(preset, Map.of("seq_length", 16), 3);
            PretrainedModel llama = new LlamaProvider().load(request);
            add(preset + "-lora", new LoraAdapter(), llama, Map.of("r", 2, "lora_dropout", 0.1,
                    "target_modules", "all-linear"), OptimizerSpec.adamW().withAccumulation(2), false);
            add(preset + "-prefix_tuning", new PrefixTuningAdapter(), llama, Map.of("num_virtual_tokens", 3),
                    OptimizerSpec.adamW(), false);
            add(preset + "-lora-recompute", new LoraAdapter(), llama, Map.of("r", 2), OptimizerSpec.adamW(), true);
            var weights = LlamaProvider.loadWeights(request);
            graphs.put(preset + "-generate-first", LlamaGraph.build(weights, CausalLmGraphOptions.inference()
                    .withKvCache(CausalLmGraphOptions.KvCache.PRESENT)).model());
            graphs.put(preset + "-generate-next", LlamaGraph.build(weights, CausalLmGraphOptions.inference())
                    .model());
        }
    }

    private static void add(String name, PetAdapter a, PretrainedModel base, Map<String, Object> config,
            OptimizerSpec spec) {
        add(name, a, base, config, spec, false);
    }

    private static void add(String name, PetAdapter a, PretrainedModel base, Map<String, Object> config,
            OptimizerSpec spec, boolean recompute) {
        PetModel pet = a.getPetModel(base, a.parseConfig(config));
        var anatomy = base.anatomy();
        // the recomputed graphs also compute the head and loss over row chunks (Split with computed sizes, ...)
        List<String> blocks = BlockBoundaries.of(pet.model().graph(), anatomy);
        GraphTrainStep.Graphs g = GraphTrainStep.graphs(pet.model(), new GraphTrainStep.ModelIo(anatomy.inputIds(),
                anatomy.attentionMask(), anatomy.logits(), recompute ? Recompute.segments(blocks) : Recompute.NONE,
                recompute ? new LossChunks(blocks.get(blocks.size() - 1), 3) : null), pet.trainables(), spec);
        if (recompute) {
            assertTrue(g.trainStep().model().graph().nodes().stream().anyMatch(n -> n.name().startsWith("recompute/")),
                    name + " recomputes blocks");
            assertTrue(g.eval().graph().nodes().stream().anyMatch(n -> n.name().contains("/chunk2/")),
                    name + " evaluates in chunks");
            assertTrue(g.trainStep().model().graph().nodes().stream().anyMatch(n -> n.name().contains("/chunk2/")),
                    name + " trains in chunks");
        }
        graphs.put(name + "-train", g.trainStep().model());
        graphs.put(name + "-eval", g.eval());
    }

    @Test
    void theTableRejectsWhatTheCudaProviderLacks() {
        assertTrue(table.check("ai.onnx", "MatMul", 17, List.of(DataType.FLOAT, DataType.FLOAT)) == null);
        assertTrue(table.check("ai.onnx", "SoftmaxCrossEntropyLoss", 17, List.of(DataType.FLOAT, DataType.INT64))
                .contains("no CUDA kernel"));
        assertTrue(table.check("ai.onnx", "ReduceMean", 17, List.of(DataType.INT64)).contains("tensor(int64)"));
        assertTrue(table.check("ai.onnx", "LogSoftmax", 17, List.of(DataType.BFLOAT16)).contains("bfloat16"));
        assertTrue(table.check("ai.onnx", "Expand", 17, List.of(DataType.FLOAT, DataType.INT32))
                .contains("takes tensor(int64)"));
        assertTrue(table.check("ai.onnx", "Add", 12, List.of(DataType.FLOAT, DataType.FLOAT)).contains("opset 12"));
        assertTrue(table.check("ai.onnx", "Concat", 17, List.of(DataType.INT64, DataType.INT64, DataType.INT64))
                == null, "variadic inputs share the last parameter's constraint");
    }

    @Test
    void everyNodeOfEveryGraphHasACudaKernel() {
        List<String> missing = new ArrayList<>();
        TreeSet<String> used = new TreeSet<>();
        graphs.forEach((name, model) -> {
            ShapeInference.inferGraph(model.graph(), (int) model.opset());
            for (Node n : model.graph().nodes()) {
                String domain = n.domain().isEmpty() ? "ai.onnx" : n.domain();
                long opset = model.opsets().getOrDefault(n.domain(), model.opset());
                List<DataType> types = new ArrayList<>();
                for (Value v : n.inputs()) {
                    if (v != null && v.type().dataType() == null) {
                        missing.add(name + " node '" + n.name() + "': element type of input '" + v.name()
                                + "' unknown, so its kernel cannot be checked");
                    }
                    types.add(v == null ? null : v.type().dataType());
                }
                String sig = domain + ":" + n.opType() + "-" + opset + types.toString().toLowerCase(Locale.ROOT);
                used.add(sig);
                String why = table.check(domain, n.opType(), opset, types);
                if (why != null) {
                    missing.add(name + " node '" + n.name() + "' " + sig + ": " + why);
                }
            }
        });
        System.out.println("ops used: " + used);
        if (!missing.isEmpty()) {
            fail(missing.size() + " nodes would fall back to the CPU:\n  " + String.join("\n  ",
                    new TreeSet<>(missing)));
        }
        assertTrue(used.size() > 20, "the graphs use many ops: " + used);
    }
}
