package dev.pet.runtime.train;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetAdapter;
import dev.pet.api.PetAdapters;
import dev.pet.api.PetConfigException;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.Quantization;
import dev.pet.onnx.quant.QuantizedLinears;
import dev.pet.engine.Device;
import dev.pet.engine.EngineOptions;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.autodiff.Recompute;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.ConfigException;
import dev.pet.runtime.config.OptimizerConfig;
import dev.pet.runtime.config.PetSpec;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.data.PackedDataset;
import dev.pet.runtime.plugin.Plugin;
import dev.pet.runtime.plugin.PluginKind;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Resolves a run config into its parts: the base model through the model providers (in the graph form the command
 * runs), the PET model through the algorithm's adapter (get_pet_model, then freeze_include / freeze_exclude) when the
 * config names one, datasets, the optimizer and the engine.
 */
final class RunSetup {
    /** Where the PET config sits in the resolved (canonical) run config. */
    static final String PET_CONFIG_PATH = "model.model_config.pet_config";
    static final String QUANTIZATION_PATH = "model.model_config.quantization";
    final RunConfig config;
    final PetAdapters registry;
    final PretrainedModel base;
    /** What was quantized, or null when the config asks for no quantization. */
    final QuantizedLinears.Result quantized;
    /** The PET algorithm and model, or null when the config has no pet_config (a base model). */
    final PetAdapter<?> adapter;
    final PetModel pet;
    final int seqLength;
    private final Map<String, Object> petConfig;
    private final List<String> freezeInclude;
    private final List<String> freezeExclude;

    /** A quantization setting the model refused, named by its place in the run config. */
    static ConfigException quantizationError(PetConfigException e) {
        return new ConfigException(QUANTIZATION_PATH + "." + e.key(), e.problem(), e);
    }

    RunSetup(RunConfig config, RunEnvironment env) {
        this(config, env, ModelRequest.GraphForm.TRAINING);
    }

    RunSetup(RunConfig config, RunEnvironment env, ModelRequest.GraphForm form) {
        this.config = config;
        this.registry = new PetAdapters(
                env.plugins().plugins(PluginKind.PET).stream().<PetAdapter<?>>map(Plugin::provider).toList(),
                env.plugins().plugins(PluginKind.MODEL).stream().map(Plugin::provider).toList());
        var mc = config.model().modelConfig();
        String hint = providerHint(registry, mc.type(), config.model().archType());
        PretrainedModel loaded = registry.getPretrainedModel(hint, new ModelRequest(mc.checkpointNameOrPath(),
                mc.overrides(), config.seed(), form));
        if (mc.quantization() != null) {
            // Before the PET method: every graph made from the base computes with the quantized weights, and the
            // float weights are no longer referenced once the provider's model is dropped.
            Quantization.Applied q;
            try {
                q = mc.quantization().apply(loaded, form == ModelRequest.GraphForm.TRAINING);
            } catch (PetConfigException e) {
                throw quantizationError(e);
            }
            this.quantized = q.result();
            loaded = q.model();
        } else {
            this.quantized = null;
        }
        this.base = loaded;
        PetSpec spec = config.model().petSpec().orElse(null);
        if (spec == null) {
            this.adapter = null;
            this.pet = null;
            this.petConfig = Map.of();
            this.freezeInclude = List.of();
            this.freezeExclude = List.of();
            this.seqLength = sequenceLength(mc.seqLength(), 0, null);
            return;
        }
        this.adapter = registry.adapter(spec.petType());
        Map<String, Object> raw = new LinkedHashMap<>(spec.config());
        raw.remove("pet_type");
        this.freezeInclude = strings(raw.remove("freeze_include"));
        this.freezeExclude = strings(raw.remove("freeze_exclude"));
        Object init = raw.remove(PetAdapters.INIT_ADAPTER);
        this.petConfig = Map.copyOf(raw);
        PetModel p = build(init == null ? null : Path.of(init.toString()));
        this.pet = p;
        this.seqLength = sequenceLength(mc.seqLength(), p.config().reservedPositions(), spec.petType());
    }

    private int sequenceLength(int configured, long reserved, String petType) {
        long positions = base.maxPositions() - reserved;
        int seq = configured == 0 ? (int) positions : configured;
        if (seq > positions) {
            throw new PetException("model.model_config.seq_length " + seq + " is longer than the "
                    + base.maxPositions() + " positions of " + base.name()
                    + (reserved > 0 ? " less the " + reserved + " taken by " + petType + "'s virtual tokens" : ""));
        }
        return seq;
    }

    /** Positions left for real tokens: the model's, less those the PET method's virtual tokens take. */
    long tokenPositions() {
        return base.maxPositions() - (pet == null ? 0 : pet.config().reservedPositions());
    }

    /** The PET model; fails with the config key to set when the config names no PET method. */
    PetModel requirePet() {
        if (pet == null) {
            throw new PetException("model.model_config.pet_config is missing: say which PET method to use "
                    + "(pet_type: lora, ...)");
        }
        return pet;
    }

    /**
     * The model ONNX Runtime adapters apply to: the PET model in inference mode whose trainable tensors are graph
     * inputs defaulting to their initial values (for LoRA, B = 0: the base model), so that an {@code .onnx_adapter}
     * holding trained values overrides them per run.
     */
    dev.pet.onnx.ir.Model servingModel() {
        dev.pet.onnx.ir.Model serving = requirePet().inferenceModel();
        for (String t : pet.trainables()) {
            serving.graph().addInput(t, serving.graph().requireValue(t).type());
        }
        return serving;
    }

    /** The name of the PET method, or "none" for a base model. */
    String petType() {
        return adapter == null ? "none" : adapter.type();
    }

    /**
     * The provider a run's {@code model_config.type} and {@code arch.type} select, resolved through the providers
     * (each lists the config and architecture type names it accepts among its aliases): the config type, else the
     * architecture type, else its stem before a MindFormers {@code With<Pet>} suffix ({@code GPT2WithLora}); when no
     * provider accepts any of them, the config type, whose lookup then lists the installed names.
     */
    static String providerHint(PetAdapters registry, String configType, String archType) {
        String stem = archType.replaceFirst("(?i)With[A-Za-z]+$", "");
        for (String name : List.of(configType, archType, stem)) {
            if (!name.isEmpty() && registry.hasProvider(name)) {
                return name;
            }
        }
        return configType;
    }

    private static List<String> strings(Object o) {
        if (o == null) {
            return List.of();
        }
        if (o instanceof List<?> l) {
            return l.stream().map(String::valueOf).toList();
        }
        return List.of(String.valueOf(o));
    }

    String tokenizerId() {
        return base.providerId() + ":" + base.name() + ":" + base.vocabSize();
    }

    PackedDataset open(dev.pet.runtime.config.DataLoaderConfig d, RunEnvironment env) {
        PackedDataset data = PackedDataset.open(d, seqLength, base.tokenizer(), tokenizerId(), env.tokenCache());
        data.requireIdsBelow(base.vocabSize(), base.name());
        return data;
    }

    OptimizerSpec optimizer() {
        OptimizerConfig o = config.optimizer();
        int accumulation = Math.max(1, config.runner().gradientAccumulationSteps());
        OptimizerSpec.Kind kind = switch (o.type()) {
            case ADAMW -> OptimizerSpec.Kind.ADAMW;
            case ADAM_WEIGHT_DECAY -> OptimizerSpec.Kind.ADAM_WEIGHT_DECAY;
            case ADAM -> {
                if (o.weightDecay() > 0) {
                    throw new PetException("optimizer.type Adam with weight_decay > 0 is L2-coupled decay, which PET "
                            + "Runtime does not implement; use AdamW (decoupled) or AdamWeightDecay");
                }
                yield OptimizerSpec.Kind.ADAMW;
            }
            case SGD -> OptimizerSpec.Kind.SGD;
        };
        double beta1 = kind == OptimizerSpec.Kind.SGD ? o.momentum() : o.beta1();
        return new OptimizerSpec(kind, beta1, o.beta2(), o.eps(), o.weightDecay(), OptimizerSpec.biasesAndNorms(),
                o.maxGradNorm(), false, accumulation);
    }

    OrtEngine engine() {
        // Deterministic kernels: a resumed run must reproduce an uninterrupted one bit for bit.
        // Planned step memory (ORT's memory pattern) took 0.8 GiB off GPT-2 large's peak without recomputation, but
        // with per-block recomputation it raised a 4-bit GPT-2-XL's (2.99 to 3.42 GiB; docs/BENCHMARKS.md).
        EngineOptions options = EngineOptions.defaults().withDevice(config.device()).withDeterministic(true)
                .withPlannedStepMemory(!config.runner().recompute());
        return new OrtEngine(config.runner().prepackWeights() ? options.withPrepackLimitBytes(Long.MAX_VALUE)
                : options);
    }

    GraphTrainStep trainStep(OrtEngine engine) {
        return trainStep(engine, null);
    }

    /** The fused train step, or with a {@code collective} one data-parallel replica's split step. */
    GraphTrainStep trainStep(OrtEngine engine, Collective collective) {
        var a = base.anatomy();
        Model model = requirePet().model();
        Recompute recompute = config.runner().recompute()
                ? Recompute.segments(BlockBoundaries.of(model.graph(), a)) : Recompute.NONE;
        var io = new GraphTrainStep.ModelIo(a.inputIds(), a.attentionMask(), a.logits(), recompute,
                HeadChunking.of(model.graph(), a, (long) config.runner().batchSize() * seqLength));
        GraphTrainStep.AdapterWriter writer = (values, dir) -> adapter.saveAdapter(pet, values, dir);
        return collective == null
                ? new GraphTrainStep(engine, model, io, pet.trainables(), optimizer(), config.seed(), writer)
                : GraphTrainStep.dataParallel(engine, model, io, pet.trainables(), optimizer(), config.seed(), writer,
                        collective);
    }

    /**
     * The PET model as the run config makes it, or from an adapter directory whose own config defines the
     * algorithm's options (the run's pet_config may not contradict it) and whose tensors are the values; then
     * freeze_include / freeze_exclude.
     */
    private PetModel build(Path adapterDir) {
        PetModel p;
        try {
            p = adapterDir == null ? adapter.getPetModel(base, petConfig)
                    : PetAdapters.fromAdapter(adapter, base, petConfig, adapterDir);
        } catch (PetConfigException e) {
            throw new ConfigException(PET_CONFIG_PATH + "." + e.key(), e.problem(), e);
        }
        if (!freezeInclude.isEmpty() || !freezeExclude.isEmpty()) {
            p = PetAdapters.freezePretrainedModel(p, freezeInclude, freezeExclude);
        }
        return p;
    }

    /** The PET model with an adapter directory's config and weights (or the run's model when {@code dir} is null). */
    PetModel withAdapter(Path dir) {
        requirePet();
        if (dir == null) {
            return pet;
        }
        PetModel loaded = build(dir);
        PetAdapters.requireFinite(loaded.trainableTensors(), "adapter " + dir);
        return loaded;
    }

    /**
     * The model a command runs for inference: the base model's graph without a PET method, else the PET model with
     * {@code dir}'s config and weights (or as the run makes it when null), in inference mode.
     */
    dev.pet.onnx.ir.Model inferenceModel(Path dir) {
        if (pet == null) {
            if (dir != null) {
                throw new PetException("--adapter " + dir + " needs a PET method: give a run config whose "
                        + "model.model_config.pet_config says which (pet_type: lora, ...)");
            }
            return base.model().copy();
        }
        return withAdapter(dir).inferenceModel();
    }
}
