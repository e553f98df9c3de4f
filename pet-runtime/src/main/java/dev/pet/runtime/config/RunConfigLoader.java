package dev.pet.runtime.config;

import dev.pet.api.PetConfigException;
import dev.pet.api.Quantization;
import dev.pet.engine.Device;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.engine.EngineException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads run configs: YAML (MindFormers layout, or the seed's form with {@code model.arch.pet}) → tree →
 * {@code --set} overrides → strict binding into {@link RunConfig}. Unknown keys and wrong types fail naming the
 * key path, the value found and what is valid.
 */
public final class RunConfigLoader {
    /** Config files are small; anything larger is not a config. */
    static final long MAX_CONFIG_BYTES = 4L << 20;

    private static final YAMLMapper YAML = YAMLMapper.builder(
                    YAMLFactory.builder().build())
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
            .build();
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS);

    /** model_config keys passed to the model provider as overrides (MindFormers GPT2Config spelling). */
    static final Set<String> MODEL_OVERRIDE_KEYS = Set.of("vocab_size", "hidden_size", "num_layers", "num_heads",
            "expand_ratio", "hidden_act", "embedding_dropout_prob", "hidden_dropout_rate", "attention_dropout_rate",
            "layer_norm_epsilon", "initializer_range", "eos_token_id", "bos_token_id", "pad_token_id",
            "compute_dtype", "param_init_type", "layernorm_compute_type", "softmax_compute_type");

    private static final Pattern ARCH_WITH_PET = Pattern.compile("(?i).+With([A-Za-z]+)");

    private RunConfigLoader() {
    }

    /**
     * Loads a YAML file and applies {@code overrides} ({@code a.b=c}) before binding. Relative paths written in the
     * file ({@code output_dir}, {@code dataset_dir}, and {@code checkpoint_name_or_path} when it names an existing
     * file or directory there) resolve against the file's directory, so a config works from any working directory;
     * paths given in {@code overrides} are the caller's and stay relative to the working directory.
     */
    public static RunConfig load(Path file, List<String> overrides) {
        Objects.requireNonNull(file, "file");
        String text;
        try {
            long size = Files.size(file);
            if (size > MAX_CONFIG_BYTES) {
                throw new ConfigException("", file + ": " + size + " bytes, more than a config may have ("
                        + MAX_CONFIG_BYTES + ")");
            }
            text = Files.readString(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new ConfigException("", "cannot read config " + file + ": " + e, e);
        }
        return parse(text, file.toString(), file.toAbsolutePath().normalize().getParent(), overrides);
    }

    /**
     * Parses YAML text ({@code source} names it in errors) and applies {@code overrides} before binding; relative
     * paths stay relative to the working directory.
     */
    public static RunConfig parse(String yaml, String source, List<String> overrides) {
        return parse(yaml, source, null, overrides);
    }

    /** Parses YAML text ({@code source} names it in errors) and applies {@code overrides} before binding. */
    private static RunConfig parse(String yaml, String source, Path baseDir, List<String> overrides) {
        Objects.requireNonNull(yaml, "yaml");
        JsonNode tree = readTree(yaml, source);
        if (tree == null || tree.isMissingNode() || tree.isNull()) {
            tree = YAML.createObjectNode();
        }
        if (!tree.isObject()) {
            throw new ConfigException("", source + ": expected a mapping at the top level, found " + ConfigNode.describe(tree));
        }
        ObjectNode root = (ObjectNode) tree;
        if (baseDir != null) {
            resolvePaths(root, baseDir);
        }
        for (String override : overrides == null ? List.<String>of() : overrides) {
            applyOverride(root, override);
        }
        return bind(root);
    }

    /** Rewrites the relative paths of a config file's tree against the file's directory (see {@link #load}). */
    private static void resolvePaths(ObjectNode root, Path baseDir) {
        resolve(root, "output_dir", baseDir, false);
        for (String dataset : List.of("train_dataset", "eval_dataset")) {
            if (root.get(dataset) instanceof ObjectNode d && d.get("data_loader") instanceof ObjectNode loader) {
                resolve(loader, "dataset_dir", baseDir, false);
            }
        }
        if (root.get("model") instanceof ObjectNode model && model.get("model_config") instanceof ObjectNode mc) {
            // A name or a path: a preset name ("gpt2-tiny") stays a name unless the config's folder has it.
            resolve(mc, "checkpoint_name_or_path", baseDir, true);
        }
    }

    private static void resolve(ObjectNode node, String key, Path baseDir, boolean onlyIfExists) {
        if (!(node.get(key) instanceof TextNode text) || text.textValue().isBlank() || isUri(text.textValue())) {
            return;
        }
        Path p;
        try {
            p = Path.of(text.textValue());
        } catch (java.nio.file.InvalidPathException e) {
            return; // the binder reports it with the key's name
        }
        if (p.isAbsolute()) {
            return;
        }
        Path resolved = baseDir.resolve(p).normalize();
        if (!onlyIfExists || Files.exists(resolved)) {
            node.put(key, resolved.toString());
        }
    }

    private static JsonNode readTree(String yaml, String source) {
        if (yaml.length() > MAX_CONFIG_BYTES) {
            throw new ConfigException("", source + ": more than " + MAX_CONFIG_BYTES + " characters");
        }
        try {
            refuseAliases(yaml, source);
            return YAML.readTree(yaml);
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? "" : " at line " + e.getLocation().getLineNr()
                    + ", column " + e.getLocation().getColumnNr();
            throw new ConfigException("", source + ": invalid YAML" + where + ": " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new ConfigException("", source + ": cannot read YAML: " + e.getMessage(), e);
        }
    }

    /**
     * Jackson reads an alias ({@code *name}) as the plain string {@code name}, which would silently become a wrong
     * value; resolving aliases invites alias bombs. A run config is small, so aliases are refused with their place.
     */
    private static void refuseAliases(String yaml, String source) throws IOException {
        try (JsonParser parser = YAML.getFactory().createParser(yaml)) {
            com.fasterxml.jackson.dataformat.yaml.YAMLParser p = (com.fasterxml.jackson.dataformat.yaml.YAMLParser) parser;
            while (p.nextToken() != null) {
                if (p.isCurrentAlias()) {
                    var where = p.currentTokenLocation();
                    throw new ConfigException("", source + ": YAML alias *" + p.getText() + " at line "
                            + where.getLineNr() + ", column " + where.getColumnNr() + " is not supported in run "
                            + "configs; write the value out");
                }
            }
        }
    }

    /**
     * Applies one {@code a.b.c=value} override to a config tree. The value is typed as a YAML scalar would be
     * ({@code 8} an integer, {@code 1.0e-4} a number, {@code true} a boolean, {@code [a, b]} a list); a numeric
     * segment indexes a list. Missing mappings on the way are created; the binder then rejects unknown keys.
     */
    public static void applyOverride(ObjectNode root, String override) {
        Objects.requireNonNull(override, "override");
        int eq = override.indexOf('=');
        if (eq <= 0) {
            throw new ConfigException("", "override '" + override + "' must look like key.path=value");
        }
        String keyPath = override.substring(0, eq).trim();
        String rawValue = override.substring(eq + 1);
        JsonNode value = rawValue.isBlank() ? TextNode.valueOf("") : readTree(rawValue, "--set " + keyPath);
        if (value == null || value.isMissingNode()) {
            value = TextNode.valueOf(rawValue);
        }
        String[] segments = keyPath.split("\\.", -1);
        JsonNode current = root;
        StringBuilder walked = new StringBuilder();
        for (int i = 0; i < segments.length; i++) {
            String segment = segments[i];
            if (segment.isEmpty()) {
                throw new ConfigException(keyPath, "empty segment in override key");
            }
            boolean last = i == segments.length - 1;
            if (current instanceof ObjectNode object) {
                if (last) {
                    object.set(segment, value);
                    return;
                }
                JsonNode next = object.get(segment);
                if (next == null || next.isNull()) {
                    next = object.putObject(segment);
                }
                current = next;
            } else if (current instanceof ArrayNode array) {
                int index;
                try {
                    index = Integer.parseInt(segment);
                } catch (NumberFormatException e) {
                    throw new ConfigException(walked.toString(), "is a list; override segment '" + segment
                            + "' must be an index 0.." + (array.size() - 1));
                }
                if (index < 0 || index > array.size()) {
                    throw new ConfigException(walked.toString(), "list index " + index + " out of range 0.." + array.size());
                }
                if (last) {
                    if (index == array.size()) {
                        array.add(value);
                    } else {
                        array.set(index, value);
                    }
                    return;
                }
                current = index == array.size() ? array.addObject() : array.get(index);
            } else {
                throw new ConfigException(walked.toString(), "is a scalar (" + ConfigNode.describe(current)
                        + "); cannot set '" + keyPath + "' below it");
            }
            walked.append(walked.length() == 0 ? "" : ".").append(segment);
        }
    }

    /**
     * A scheme of two or more letters followed by a colon ({@code hdfs://nn/runs}, {@code s3a://bucket/runs},
     * {@code file:/tmp/run}) makes a value a URI; one letter is a Windows drive ({@code C:\runs}).
     */
    private static final Pattern URI_SCHEME = Pattern.compile("[A-Za-z][A-Za-z0-9+.-]+:.*");

    static boolean isUri(String value) {
        return URI_SCHEME.matcher(value).matches();
    }

    private static URI outputUri(String value) {
        URI uri;
        try {
            uri = new URI(value);
        } catch (URISyntaxException e) {
            throw new ConfigException("output_dir", "'" + value + "' is not a valid URI: " + e.getReason(), e);
        }
        if (uri.isOpaque() || uri.getPath() == null || uri.getPath().isEmpty()) {
            throw new ConfigException("output_dir", "'" + value + "' has no absolute path; a Hadoop FileSystem URI "
                    + "names a directory, as in hdfs://namenode:8020/runs/a or file:/shared/runs/a");
        }
        return uri.normalize();
    }

    /** Where a process stages a run published to {@code uri}: under java.io.tmpdir, one directory per URI. */
    private static Path stagingDirectory(URI uri) {
        try {
            byte[] digest = MessageDigest.getInstance("SHA-256").digest(uri.toString()
                    .getBytes(StandardCharsets.UTF_8));
            return Path.of(System.getProperty("java.io.tmpdir"), "pet-staging",
                    HexFormat.of().formatHex(digest, 0, 8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    static RunConfig bind(ObjectNode tree) {
        ConfigNode root = ConfigNode.root(tree);
        long seed = root.longValue("seed", 42);
        RunMode mode = root.choice("run_mode", enumChoices(RunMode.values(), RunMode::yamlName), RunMode.FINETUNE);
        String output = root.string("output_dir", "./output");
        URI outputUri = isUri(output) ? outputUri(output) : null;
        Path outputDir = outputUri == null ? Path.of(output) : stagingDirectory(outputUri);
        boolean resume = root.bool("resume_training", false);
        boolean overwrite = root.bool("overwrite_output_dir", false);
        if (resume && overwrite) {
            throw new ConfigException("overwrite_output_dir", "true together with resume_training: true; resume "
                    + "continues the run in output_dir, overwrite deletes it: choose one");
        }
        ModelSection model = bindModel(root.child("model"), root.pathOf("model"));
        RunnerConfig runner = bindRunner(root.child("runner_config"));
        OptimizerConfig optimizer = bindOptimizer(root.child("optimizer"));
        LrScheduleConfig lr = bindLr(root.child("lr_schedule"));
        DataLoaderConfig train = bindDataset(root.child("train_dataset"));
        DataLoaderConfig eval = bindDataset(root.child("eval_dataset"));
        CallbacksConfig callbacks = bindCallbacks(root, "callbacks");
        Device device;
        try {
            device = Device.parse(root.string("device", "cpu"));
        } catch (EngineException e) {
            throw new ConfigException("device", e.getMessage() + " (valid choices: cpu, cuda, cuda:N)", e);
        }
        Quantization quantization = model.modelConfig().quantization();
        if (device.kind() == Device.Kind.CUDA && quantization != null
                && quantization.spec().kernel() == QuantSpec.Kernel.MATMUL_INTEGER) {
            throw new ConfigException("model.model_config.quantization.kernel", "matmul_integer runs ONNX Runtime's"
                    + " CPU int8 GEMM (MatMulIntegerToFloat has no CUDA kernel); on device " + device
                    + " use kernel matmul_nbits");
        }
        root.finish();
        return new RunConfig(seed, mode, outputDir, outputUri, resume, overwrite, model, runner, optimizer, lr, train, eval, callbacks, device);
    }

    private static ModelSection bindModel(ConfigNode model, String path) {
        if (model == null) {
            throw new ConfigException(path, "is required (model.model_config.checkpoint_name_or_path at least)");
        }
        ConfigNode mc = model.child("model_config");
        if (mc == null) {
            throw new ConfigException(model.pathOf("model_config"), "is required");
        }
        String type = mc.string("type", "GPT2Config");
        String checkpoint = mc.requireString("checkpoint_name_or_path");
        int seqLength = mc.intValue("seq_length", 0);
        Map<String, Object> overrides = new LinkedHashMap<>();
        for (String key : MODEL_OVERRIDE_KEYS) {
            JsonNode v = mc.raw(key);
            if (v != null) {
                overrides.put(key, ConfigNode.toPlain(v));
            }
        }
        Quantization quantization = null;
        ConfigNode q = mc.child("quantization");
        if (q != null) {
            quantization = bindQuantization(q);
        }
        PetSpec pet = null;
        ConfigNode petConfig = mc.child("pet_config");
        if (petConfig != null) {
            pet = petFromFlatConfig(petConfig);
        }
        mc.finish();

        String archType = "GPT2LMHeadModel";
        ConfigNode arch = model.child("arch");
        if (arch != null) {
            archType = arch.string("type", archType);
            ConfigNode archPet = arch.child("pet");
            if (archPet != null) {
                pet = onlyOnePet(pet, petFromSeedForm(archPet), archPet.path());
            }
            arch.finish();
        }
        ConfigNode modelPet = model.child("pet");
        if (modelPet != null) {
            pet = onlyOnePet(pet, petFromSeedForm(modelPet), modelPet.path());
        }
        model.finish();

        Matcher m = ARCH_WITH_PET.matcher(archType);
        if (m.matches()) {
            String implied = m.group(1).toLowerCase(java.util.Locale.ROOT);
            if (pet == null) {
                pet = new PetSpec(implied, Map.of());
            } else if (!pet.petType().equalsIgnoreCase(implied)) {
                throw new ConfigException(path + ".arch.type", "'" + archType + "' implies pet_type " + implied
                        + " but the PET config says " + pet.petType());
            }
        }
        return new ModelSection(new ModelConfig(type, checkpoint, seqLength, overrides, quantization), archType, pet);
    }

    /**
     * {@code model_config.quantization}: bits, block_size, symmetric, compute, kernel, include, exclude, lm_head,
     * embeddings.
     */
    private static Quantization bindQuantization(ConfigNode q) {
        QuantSpec defaults = QuantSpec.defaults();
        String kernel = q.string("kernel", defaults.kernel().toString());
        // matmul_integer has 8-bit codes and one scale per output channel: bits default to 8, and a block size
        // would be silently unused, so it is refused.
        boolean perChannel = QuantSpec.Kernel.MATMUL_INTEGER.toString().equalsIgnoreCase(kernel);
        if (perChannel && q.raw("block_size") != null) {
            throw new ConfigException(q.pathOf("block_size"), "does not apply to kernel matmul_integer, which has one"
                    + " scale per output channel; remove it");
        }
        int bits = q.intValue("bits", perChannel ? 8 : defaults.bits());
        int blockSize = q.intValue("block_size", defaults.blockSize());
        boolean symmetric = q.bool("symmetric", defaults.symmetric());
        String compute = q.string("compute", defaults.compute().toString());
        Object include = q.raw("include") == null ? null : ConfigNode.toPlain(q.raw("include"));
        Object exclude = q.raw("exclude") == null ? null : ConfigNode.toPlain(q.raw("exclude"));
        boolean lmHead = q.bool("lm_head", false);
        boolean embeddings = q.bool("embeddings", false);
        q.finish();
        try {
            return new Quantization(new QuantSpec(bits, blockSize, symmetric, QuantSpec.Compute.parse(compute),
                    QuantSpec.Kernel.parse(kernel)),
                    Quantization.modules(include, exclude), lmHead, embeddings);
        } catch (QuantSpec.Invalid e) {
            throw new ConfigException(q.pathOf(e.key()), e.problem(), e);
        } catch (PetConfigException e) {
            throw new ConfigException(q.pathOf(e.key()), e.problem(), e);
        }
    }

    private static PetSpec onlyOnePet(PetSpec existing, PetSpec found, String path) {
        if (existing != null) {
            throw new ConfigException(path, "a second PET config; give pet_config in model_config or pet in arch, not both");
        }
        return found;
    }

    private static PetSpec petFromFlatConfig(ConfigNode node) {
        String type = node.requireString("pet_type");
        Map<String, Object> config = new LinkedHashMap<>(ConfigNode.toPlainMap(node.object()));
        config.remove("pet_type");
        return new PetSpec(type, config);
    }

    private static PetSpec petFromSeedForm(ConfigNode node) {
        String type = node.requireString("pet_type");
        Map<String, Object> config = node.plainMap("pet_config");
        if (config.containsKey("pet_type") && !type.equals(String.valueOf(config.get("pet_type")))) {
            throw new ConfigException(node.pathOf("pet_config.pet_type"), "'" + config.get("pet_type")
                    + "' disagrees with pet_type '" + type + "'");
        }
        Map<String, Object> copy = new LinkedHashMap<>(config);
        copy.remove("pet_type");
        node.finish();
        return new PetSpec(type, copy);
    }

    private static RunnerConfig bindRunner(ConfigNode n) {
        RunnerConfig d = RunnerConfig.defaults();
        if (n == null) {
            return d;
        }
        RunnerConfig r = new RunnerConfig(n.intValue("epochs", d.epochs()), n.intValue("batch_size", d.batchSize()),
                n.longValue("max_steps", d.maxSteps()),
                n.intValue("gradient_accumulation_steps", d.gradientAccumulationSteps()),
                n.bool("recompute", d.recompute()), n.intValue("data_parallel", d.dataParallel()),
                n.bool("prepack_weights", d.prepackWeights()));
        n.finish();
        return r;
    }

    private static OptimizerConfig bindOptimizer(ConfigNode n) {
        OptimizerConfig d = OptimizerConfig.defaults();
        if (n == null) {
            return d;
        }
        OptimizerConfig o = new OptimizerConfig(
                n.choice("type", enumChoices(OptimizerConfig.Type.values(), OptimizerConfig.Type::yamlName), d.type()),
                n.doubleValue("beta1", d.beta1()), n.doubleValue("beta2", d.beta2()), n.doubleValue("eps", d.eps()),
                n.doubleValue("weight_decay", d.weightDecay()), n.doubleValue("max_grad_norm", d.maxGradNorm()),
                n.doubleValue("momentum", d.momentum()));
        n.finish();
        return o;
    }

    private static LrScheduleConfig bindLr(ConfigNode n) {
        LrScheduleConfig d = LrScheduleConfig.defaults();
        if (n == null) {
            return d;
        }
        Map<String, LrScheduleConfig.Type> types = new LinkedHashMap<>(
                enumChoices(LrScheduleConfig.Type.values(), LrScheduleConfig.Type::yamlName));
        // MindFormers' class names for the same shapes.
        types.put("ConstantWarmUpLR", LrScheduleConfig.Type.CONSTANT);
        types.put("LinearWithWarmUpLR", LrScheduleConfig.Type.LINEAR);
        types.put("CosineWithWarmUpLR", LrScheduleConfig.Type.COSINE);
        types.put("PolynomialWithWarmUpLR", LrScheduleConfig.Type.POLYNOMIAL);
        LrScheduleConfig.Type type = n.choice("type", types, d.type());
        if (n.has("lr_end") && n.has("min_lr")) {
            throw new ConfigException(n.pathOf("min_lr"), "give lr_end or its alias min_lr, not both");
        }
        double lrEnd = n.has("min_lr") ? n.doubleValue("min_lr", 0) : n.doubleValue("lr_end", d.lrEnd());
        n.accept("min_lr");
        LrScheduleConfig c = new LrScheduleConfig(type, n.doubleValue("learning_rate", d.learningRate()),
                n.longValue("warmup_steps", d.warmupSteps()), n.doubleValue("warmup_ratio", d.warmupRatio()), lrEnd,
                n.doubleValue("power", d.power()), n.doubleValue("num_cycles", d.numCycles()),
                n.longValue("total_steps", d.totalSteps()));
        n.finish();
        return c;
    }

    private static DataLoaderConfig bindDataset(ConfigNode n) {
        if (n == null) {
            return null;
        }
        ConfigNode loader = n.child("data_loader");
        if (loader == null) {
            throw new ConfigException(n.pathOf("data_loader"), "is required");
        }
        DataLoaderConfig.Type type = loader.choice("type",
                enumChoices(DataLoaderConfig.Type.values(), DataLoaderConfig.Type::yamlName), null);
        if (type == null) {
            throw new ConfigException(loader.pathOf("type"), "is required; valid choices: wikitext, text, jsonl, tokens");
        }
        DataLoaderConfig c = new DataLoaderConfig(type, Path.of(loader.requireString("dataset_dir")),
                loader.bool("shuffle", false));
        loader.finish();
        n.finish();
        return c;
    }

    private static CallbacksConfig bindCallbacks(ConfigNode root, String key) {
        CallbacksConfig d = CallbacksConfig.defaults();
        JsonNode raw = root.raw(key);
        String path = root.pathOf(key);
        if (raw == null) {
            return d;
        }
        if (raw.isObject()) {
            ConfigNode n = ConfigNode.of(path, raw);
            CallbacksConfig c = new CallbacksConfig(n.longValue("checkpoint_steps", d.checkpointSteps()),
                    n.intValue("keep_checkpoints", d.keepCheckpoints()), n.longValue("eval_steps", d.evalSteps()),
                    n.longValue("log_steps", d.logSteps()), n.intValue("prometheus_port", d.prometheusPort()));
            n.finish();
            return c;
        }
        if (!raw.isArray()) {
            throw new ConfigException(path, "expected a mapping or a MindFormers list of callbacks, found "
                    + ConfigNode.describe(raw));
        }
        long checkpointSteps = d.checkpointSteps();
        int keep = d.keepCheckpoints();
        long evalSteps = d.evalSteps();
        long logSteps = d.logSteps();
        int port = d.prometheusPort();
        List<String> types = List.of("MFLossMonitor", "CheckpointMointor", "CheckpointMonitor", "EvalMonitor",
                "PrometheusMonitor", "ObsMonitor");
        for (int i = 0; i < raw.size(); i++) {
            ConfigNode item = ConfigNode.of(path + "." + i, raw.get(i));
            String type = item.requireString("type");
            switch (type) {
                case "MFLossMonitor" -> logSteps = item.longValue("per_print_times", logSteps);
                case "CheckpointMointor", "CheckpointMonitor" -> {
                    checkpointSteps = item.longValue("save_checkpoint_steps", checkpointSteps);
                    keep = item.intValue("keep_checkpoint_max", keep);
                    // MindFormers' storage options; the runtime always saves trainable params atomically.
                    item.accept("prefix");
                    item.accept("integrated_save");
                    item.accept("async_save");
                }
                case "EvalMonitor" -> evalSteps = item.longValue("eval_steps", evalSteps);
                case "PrometheusMonitor" -> port = item.intValue("port", port);
                case "ObsMonitor" -> {
                    // Cloud upload monitor of MindFormers: nothing to do locally.
                }
                default -> throw new ConfigException(item.pathOf("type"), "unknown callback '" + type
                        + "'; valid choices: " + String.join(", ", types) + Suggestions.didYouMean(type, types));
            }
            item.finish();
        }
        return new CallbacksConfig(checkpointSteps, keep, evalSteps, logSteps, port);
    }

    private static <E> Map<String, E> enumChoices(E[] values, java.util.function.Function<E, String> name) {
        Map<String, E> map = new LinkedHashMap<>();
        for (E e : values) {
            map.put(name.apply(e), e);
        }
        return map;
    }

    /** The canonical tree of a config: every key, defaults filled in, map-form callbacks. */
    public static Map<String, Object> toMap(RunConfig c) {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("seed", c.seed());
        root.put("run_mode", c.runMode().yamlName());
        root.put("output_dir", c.publishedTo().map(URI::toString).orElse(c.outputDir().toString()));
        root.put("resume_training", c.resumeTraining());
        root.put("overwrite_output_dir", c.overwriteOutputDir());
        Map<String, Object> mc = new LinkedHashMap<>();
        ModelConfig m = c.model().modelConfig();
        mc.put("type", m.type());
        mc.put("checkpoint_name_or_path", m.checkpointNameOrPath());
        mc.put("seq_length", m.seqLength());
        mc.putAll(m.overrides());
        m.quantizationSpec().ifPresent(q -> mc.put("quantization", q.toMap()));
        c.model().petSpec().ifPresent(p -> {
            Map<String, Object> pc = new LinkedHashMap<>();
            pc.put("pet_type", p.petType());
            pc.putAll(p.config());
            mc.put("pet_config", pc);
        });
        root.put("model", Map.of("model_config", mc, "arch", Map.of("type", c.model().archType())));
        RunnerConfig r = c.runner();
        Map<String, Object> runner = ordered("epochs", r.epochs(), "batch_size", r.batchSize(), "max_steps",
                r.maxSteps(), "gradient_accumulation_steps", r.gradientAccumulationSteps());
        if (r.recompute()) { // written only when set, so configs without it keep their hashes
            runner.put("recompute", true);
        }
        if (r.prepackWeights()) { // written only when set, like recompute
            runner.put("prepack_weights", true);
        }
        if (r.dataParallel() > 1) { // only when set, so single-process runs keep their config hash
            runner.put("data_parallel", r.dataParallel());
        }
        root.put("runner_config", runner);
        OptimizerConfig o = c.optimizer();
        root.put("optimizer", ordered("type", o.type().yamlName(), "beta1", o.beta1(), "beta2", o.beta2(), "eps", o.eps(),
                "weight_decay", o.weightDecay(), "max_grad_norm", o.maxGradNorm(), "momentum", o.momentum()));
        LrScheduleConfig l = c.lrSchedule();
        root.put("lr_schedule", ordered("type", l.type().yamlName(), "learning_rate", l.learningRate(),
                "warmup_steps", l.warmupSteps(), "warmup_ratio", l.warmupRatio(), "lr_end", l.lrEnd(),
                "power", l.power(), "num_cycles", l.numCycles(), "total_steps", l.totalSteps()));
        c.train().ifPresent(t -> root.put("train_dataset", dataset(t)));
        c.eval().ifPresent(t -> root.put("eval_dataset", dataset(t)));
        CallbacksConfig cb = c.callbacks();
        root.put("callbacks", ordered("checkpoint_steps", cb.checkpointSteps(), "keep_checkpoints", cb.keepCheckpoints(),
                "eval_steps", cb.evalSteps(), "log_steps", cb.logSteps(), "prometheus_port", cb.prometheusPort()));
        root.put("device", c.device().toString());
        return root;
    }

    private static Map<String, Object> dataset(DataLoaderConfig d) {
        return Map.of("data_loader", ordered("type", d.type().yamlName(), "dataset_dir", d.datasetDir().toString(),
                "shuffle", d.shuffle()));
    }

    private static Map<String, Object> ordered(Object... kv) {
        Map<String, Object> map = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            map.put((String) kv[i], kv[i + 1]);
        }
        return map;
    }

    static String toYaml(RunConfig c) {
        try {
            return YAML.writeValueAsString(toMap(c));
        } catch (JsonProcessingException e) {
            throw new ConfigException("", "cannot render config: " + e.getOriginalMessage(), e);
        }
    }

    /**
     * The canonical tree minus what does not change what a run computes: the resume and overwrite flags, where
     * the run directory is (a run moved to another directory resumes there), and {@code runner_config.recompute} and
     * {@code prepack_weights} (they trade memory for time; the results are the same, so a run may resume with them
     * switched).
     */
    static Map<String, Object> identity(RunConfig c) {
        Map<String, Object> map = new LinkedHashMap<>(toMap(c));
        map.remove("output_dir");
        map.remove("resume_training");
        map.remove("overwrite_output_dir");
        @SuppressWarnings("unchecked")
        Map<String, Object> runner = new LinkedHashMap<>((Map<String, Object>) map.get("runner_config"));
        runner.remove("recompute");
        runner.remove("prepack_weights");
        map.put("runner_config", runner);
        return map;
    }

    static String hash(RunConfig c) {
        try {
            byte[] json = JSON.writeValueAsBytes(identity(c));
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(json));
        } catch (JsonProcessingException | NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
