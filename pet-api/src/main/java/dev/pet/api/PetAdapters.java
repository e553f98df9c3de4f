package dev.pet.api;

import dev.pet.api.onnximport.OnnxExport;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.TreeSet;

/**
 * The seed's entry points over the discovered {@link PetAdapter}s and {@link ModelProvider}s: {@code get_pet_model},
 * {@code freeze_pretrained_model}, {@code get_pretrained_model}. Lookups go through an explicit class loader so
 * plugin layers work.
 */
public final class PetAdapters {
    private final List<PetAdapter<?>> adapters;
    private final List<ModelProvider> providers;

    public PetAdapters(List<? extends PetAdapter<?>> adapters, List<ModelProvider> providers) {
        this.adapters = List.copyOf(adapters);
        this.providers = List.copyOf(providers);
    }

    /** Everything visible from a class loader (class path or a plugin layer's loader). */
    public static PetAdapters discover(ClassLoader loader) {
        List<PetAdapter<?>> a = new ArrayList<>();
        ServiceLoader.load(PetAdapter.class, loader).forEach(a::add);
        List<ModelProvider> p = new ArrayList<>();
        ServiceLoader.load(ModelProvider.class, loader).forEach(p::add);
        return new PetAdapters(a, p);
    }

    public List<PetAdapter<?>> adapters() {
        return adapters;
    }

    public List<ModelProvider> providers() {
        return providers;
    }

    /** The adapter for a type name or alias (case-insensitive); the error lists the known types. */
    public PetAdapter<?> adapter(String petType) {
        String t = petType.toLowerCase(Locale.ROOT);
        for (PetAdapter<?> a : adapters) {
            if (a.type().equals(t) || a.aliases().contains(t)) {
                return a;
            }
        }
        TreeSet<String> known = new TreeSet<>();
        adapters.forEach(a -> {
            known.add(a.type());
            known.addAll(a.aliases());
        });
        throw new PetException("unknown pet_type '" + petType + "'; installed PET algorithms: " + known);
    }

    /** Whether an installed provider answers to this name (its id, a preset or an alias, in any case). */
    public boolean hasProvider(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return providers.stream().anyMatch(p -> p.id().equals(n) || p.aliases().contains(n)
                || p.aliases().contains(name));
    }

    /** The provider answering to a model name (id, preset or alias); a directory goes to the provider {@code hint}. */
    public ModelProvider provider(String nameOrHint) {
        String n = nameOrHint.toLowerCase(Locale.ROOT);
        for (ModelProvider p : providers) {
            if (p.id().equals(n) || p.aliases().contains(n) || p.aliases().contains(nameOrHint)) {
                return p;
            }
        }
        TreeSet<String> known = new TreeSet<>();
        providers.forEach(p -> {
            known.add(p.id());
            known.addAll(p.aliases());
        });
        throw new PetException("no model provider for '" + nameOrHint + "'; installed: " + known);
    }

    /**
     * get_pretrained_model: loads a preset or directory through the provider named by {@code providerHint}. An ONNX
     * export goes to the family its {@code config.json} names ({@code model_type}), else to the provider that
     * recognises the graph's module names, else to the hint.
     */
    public PretrainedModel getPretrainedModel(String providerHint, ModelRequest request) {
        String name = request.nameOrPath();
        ModelProvider p;
        if (OnnxExport.isExport(name)) {
            p = onnxFamily(name, providerHint);
        } else if (java.nio.file.Files.isDirectory(Path.of(name))) {
            p = directoryFamily(name, providerHint);
        } else {
            try {
                p = provider(name);
            } catch (PetException e) {
                p = provider(providerHint);
            }
        }
        PretrainedModel model = p.load(request);
        requireFinite(model.model().graph().initializers(), "model " + name);
        return model;
    }

    /**
     * Refuses weights holding NaN or infinity, naming the tensor and the element: such weights make every loss
     * NaN, and the run would otherwise fail only at its first step or, in generation and export, not at all.
     */
    public static void requireFinite(Map<String, dev.pet.onnx.tensor.Tensor> tensors, String what) {
        for (Map.Entry<String, dev.pet.onnx.tensor.Tensor> e : tensors.entrySet()) {
            long at = e.getValue().firstNonFinite();
            if (at >= 0) {
                dev.pet.onnx.tensor.Tensor t = e.getValue();
                String value = switch (t.dataType()) {
                    case FLOAT -> " (" + t.buffer().getFloat(Math.toIntExact(at * 4)) + ")";
                    case DOUBLE -> " (" + t.buffer().getDouble(Math.toIntExact(at * 8)) + ")";
                    default -> "";
                };
                throw new PetException(what + ": tensor '" + e.getKey() + "' holds a non-finite value" + value
                        + " at element " + at + " of shape " + java.util.Arrays.toString(t.shape())
                        + "; the weights are corrupt or were saved from a diverged run");
            }
        }
    }

    /**
     * A Hugging Face directory belongs to the family its {@code config.json} names ({@code model_type}), whatever
     * the run's config type says: a Llama directory under a builder's default GPT-2 hint still loads as Llama.
     */
    private ModelProvider directoryFamily(String name, String providerHint) {
        ModelProvider p = configuredFamily(name);
        return p != null ? p : provider(providerHint);
    }

    private ModelProvider configuredFamily(String name) {
        String type = OnnxExport.modelTypeOf(name);
        if (type == null) {
            return null;
        }
        try {
            return provider(type);
        } catch (PetException e) {
            throw new PetException(name + ": config.json says model_type '" + type + "', which no installed "
                    + "model family answers to; " + e.getMessage(), e);
        }
    }

    private ModelProvider onnxFamily(String name, String providerHint) {
        ModelProvider configured = configuredFamily(name);
        if (configured != null) {
            return configured;
        }
        OnnxExport export = OnnxExport.open(name);
        List<ModelProvider> claims = providers.stream().filter(p -> p.recognisesOnnx(export.model())).toList();
        if (claims.size() == 1) {
            return claims.get(0);
        }
        if (claims.size() > 1) {
            throw new PetException(export.file() + ": the graph's module names fit several model families "
                    + claims.stream().map(ModelProvider::id).toList() + "; add a config.json with model_type");
        }
        try {
            return provider(providerHint);
        } catch (PetException e) {
            throw new PetException(export.file() + ": no config.json and no installed model family recognises the "
                    + "graph's module names; installed: " + providers.stream().map(ModelProvider::id).toList(), e);
        }
    }

    /** The {@code pet_config} key naming an adapter directory to continue from. */
    public static final String INIT_ADAPTER = "init_adapter";

    /**
     * get_pet_model continuing from an adapter directory (PEFT's {@code from_pretrained(..., is_trainable=True)}):
     * the directory's {@code adapter_config.json} fixes the algorithm's options
     * ({@link PetAdapter#adapterPetConfig}), {@code petConfig} may restate them but not contradict them (an error
     * names both values), and the directory's tensors are the starting values.
     */
    public static <C extends PetConfig> PetModel fromAdapter(PetAdapter<C> adapter, PretrainedModel base,
            Map<String, Object> petConfig, Path directory) {
        adapter.parseConfig(petConfig); // the run's own keys are checked first, so later errors are contradictions
        Path file = directory.resolve(AdapterFiles.CONFIG_FILE);
        Map<String, Object> merged = new java.util.LinkedHashMap<>(petConfig);
        adapter.adapterPetConfig(directory).forEach((k, v) -> {
            if (merged.containsKey(k) && !PetConfigs.sameValue(merged.get(k), v)) {
                throw new PetException(file + " says " + k + ": " + v + " but the run's pet_config says " + k + ": "
                        + merged.get(k) + "; the adapter's own config defines it (drop the key or make it agree)");
            }
            merged.put(k, v);
        });
        C config;
        try {
            config = adapter.parseConfig(merged);
        } catch (PetException e) {
            throw new PetException("the run's pet_config contradicts " + file + ": " + e.getMessage(), e);
        }
        return adapter.loadAdapter(adapter.getPetModel(base, config), directory);
    }

    /**
     * get_pet_model: injects the algorithm; a null model is loaded first through the providers. An
     * {@value #INIT_ADAPTER} key continues from that adapter directory ({@link #fromAdapter}).
     */
    public PetModel getPetModel(PretrainedModel model, String providerHint, ModelRequest request,
            Map<String, Object> petConfig) {
        Object type = petConfig.get("pet_type");
        if (type == null) {
            throw new PetException("pet_config needs a 'pet_type' (one of " + adapters.stream().map(PetAdapter::type)
                    .toList() + ")");
        }
        PetAdapter<?> a = adapter(type.toString());
        Map<String, Object> rest = new java.util.LinkedHashMap<>(petConfig);
        rest.remove("pet_type");
        Object init = rest.remove(INIT_ADAPTER);
        PretrainedModel base = model != null ? model : getPretrainedModel(providerHint, request);
        return init == null ? a.getPetModel(base, rest) : fromAdapter(a, base, rest, Path.of(init.toString()));
    }

    /**
     * freeze_pretrained_model: the trainable set after MindPet-style refinement. Starting from the algorithm's
     * tensors, names matching a {@code freezeInclude} glob are frozen and names matching a {@code freezeExclude}
     * glob are made trainable; a name matching both stays as it was.
     */
    public static PetModel freezePretrainedModel(PetModel model, List<String> freezeInclude,
            List<String> freezeExclude) {
        List<String> trainable = new ArrayList<>(model.trainables());
        for (String name : model.model().graph().initializers().keySet()) {
            boolean inc = matchesAny(name, freezeInclude);
            boolean exc = matchesAny(name, freezeExclude);
            if (inc && !exc) {
                trainable.remove(name);
            } else if (exc && !inc && !trainable.contains(name)
                    && model.model().graph().initializer(name).dataType().isFloatingPoint()) {
                trainable.add(name);
            }
        }
        return new PetModel(model.base(), model.model(), trainable, model.config());
    }

    static boolean matchesAny(String name, List<String> globs) {
        if (globs == null) {
            return false;
        }
        for (String g : globs) {
            if (name.matches(globToRegex(g))) {
                return true;
            }
        }
        return false;
    }

    private static String globToRegex(String glob) {
        StringBuilder sb = new StringBuilder();
        for (char c : glob.toCharArray()) {
            switch (c) {
                case '*' -> sb.append(".*");
                case '?' -> sb.append('.');
                default -> sb.append(java.util.regex.Pattern.quote(String.valueOf(c)));
            }
        }
        return sb.toString();
    }
}
