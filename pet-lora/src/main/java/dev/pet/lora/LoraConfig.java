package dev.pet.lora;

import dev.pet.api.PetConfig;
import dev.pet.api.PetException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * LoRA options, bound from the MindFormers/MindPet names or the Hugging Face PEFT names for the same thing.
 *
 * @param rank             {@code r} / {@code lora_rank}
 * @param alpha            {@code lora_alpha}
 * @param dropout          {@code lora_dropout}, applied to the LoRA branch input while training
 * @param targetRegex      {@code target_modules} given as a string: a regex full-matched against module paths
 * @param targetNames      {@code target_modules} given as a list: exact names or dotted suffixes
 * @param excludeModules   modules never targeted (same matching as targets)
 * @param layersToTransform block indices to adapt; empty for all
 * @param rankPattern      per-module rank overrides (key matched as a dotted suffix or regex)
 * @param alphaPattern     per-module alpha overrides
 * @param useRslora        scaling alpha/√r instead of alpha/r
 * @param aInit            initialisation of A: {@code kaiming_uniform} (PEFT default), {@code gaussian}, {@code normal},
 *                         {@code xavier_uniform}, {@code zeros}, {@code ones}
 * @param bInit            initialisation of B: {@code zeros} (default) or the same choices
 * @param seed             seed of the initialisation
 */
public record LoraConfig(int rank, double alpha, double dropout, String targetRegex, List<String> targetNames,
        List<String> excludeModules, List<Integer> layersToTransform, Map<String, Integer> rankPattern,
        Map<String, Double> alphaPattern, boolean useRslora, String aInit, String bInit, long seed) implements PetConfig {
    static final Set<String> INITS = Set.of("kaiming_uniform", "gaussian", "normal", "xavier_uniform", "zeros",
            "ones");

    public LoraConfig {
        if (rank < 1) {
            throw new PetException("lora: r (lora_rank) must be >= 1, found " + rank);
        }
        if (dropout < 0 || dropout >= 1) {
            throw new PetException("lora: lora_dropout must be in [0, 1), found " + dropout);
        }
        targetNames = targetNames == null ? null : List.copyOf(targetNames);
        excludeModules = excludeModules == null ? List.of() : List.copyOf(excludeModules);
        layersToTransform = layersToTransform == null ? List.of() : List.copyOf(layersToTransform);
        rankPattern = rankPattern == null ? Map.of() : Map.copyOf(rankPattern);
        alphaPattern = alphaPattern == null ? Map.of() : Map.copyOf(alphaPattern);
        if (!INITS.contains(aInit) || !INITS.contains(bInit)) {
            throw new PetException("lora: lora_a_init/lora_b_init must be one of " + new TreeSet<>(INITS)
                    + ", found '" + aInit + "', '" + bInit + "'");
        }
    }

    @Override
    public String petType() {
        return "lora";
    }

    /** Key aliases: each accepted name and the canonical key it sets. */
    private static final Map<String, String> KEYS = new LinkedHashMap<>();

    static {
        KEYS.put("r", "r");
        KEYS.put("lora_rank", "r");
        KEYS.put("rank", "r");
        KEYS.put("lora_alpha", "alpha");
        KEYS.put("alpha", "alpha");
        KEYS.put("lora_dropout", "dropout");
        KEYS.put("target_modules", "target");
        KEYS.put("reg_rules", "target");
        KEYS.put("exclude_modules", "exclude");
        KEYS.put("layers_to_transform", "layers");
        KEYS.put("rank_pattern", "rank_pattern");
        KEYS.put("alpha_pattern", "alpha_pattern");
        KEYS.put("use_rslora", "rslora");
        KEYS.put("init_lora_weights", "init");
        KEYS.put("lora_a_init", "a_init");
        KEYS.put("lora_b_init", "b_init");
        KEYS.put("seed", "seed");
        KEYS.put("bias", "bias");
        KEYS.put("task_type", "task_type");
        KEYS.put("fan_in_fan_out", "fan_in_fan_out");
    }

    /** Binds a plain map; unknown keys are errors that list the valid ones. */
    static LoraConfig parse(Map<String, Object> raw) {
        Map<String, Object> v = dev.pet.api.PetConfigs.canonical("lora", raw, KEYS);
        if (v.containsKey("bias") && !"none".equals(String.valueOf(v.get("bias")))) {
            throw new PetException("lora: bias '" + v.get("bias") + "' is not supported (only 'none'); use the "
                    + "bitfit method to train biases");
        }
        int r = integer(v.getOrDefault("r", 8), "r");
        double alpha = number(v.getOrDefault("alpha", 2 * r), "lora_alpha");
        double dropout = number(v.getOrDefault("dropout", 0.0), "lora_dropout");
        Object target = v.getOrDefault("target", List.of("c_attn")); // PEFT's default for GPT-2
        String regex = null;
        List<String> names = null;
        if (target instanceof String s) {
            regex = s;
        } else if (target instanceof List<?> l) {
            names = new ArrayList<>();
            for (Object o : l) {
                names.add(String.valueOf(o));
            }
        } else {
            throw new PetException("lora: target_modules must be a regex string or a list of names, found "
                    + target);
        }
        List<String> exclude = strings(v.get("exclude"), "exclude_modules");
        List<Integer> layers = new ArrayList<>();
        Object lt = v.get("layers");
        if (lt instanceof Number n) {
            layers.add(n.intValue());
        } else if (lt instanceof List<?> l) {
            for (Object o : l) {
                layers.add(integer(o, "layers_to_transform"));
            }
        } else if (lt != null) {
            throw new PetException("lora: layers_to_transform must be an integer or a list, found " + lt);
        }
        Map<String, Integer> rp = new LinkedHashMap<>();
        map(v.get("rank_pattern"), "rank_pattern").forEach((k, x) -> rp.put(k, integer(x, "rank_pattern." + k)));
        Map<String, Double> ap = new LinkedHashMap<>();
        map(v.get("alpha_pattern"), "alpha_pattern").forEach((k, x) -> ap.put(k, number(x, "alpha_pattern." + k)));
        boolean rslora = bool(v.getOrDefault("rslora", false), "use_rslora");
        String aInit = "kaiming_uniform";
        String bInit = "zeros";
        Object init = v.get("init");
        if (init != null) {
            String s = String.valueOf(init).toLowerCase(java.util.Locale.ROOT);
            if (s.equals("gaussian")) {
                aInit = "gaussian";
            } else if (!s.equals("true")) {
                throw new PetException("lora: init_lora_weights must be true or 'gaussian', found " + init);
            }
        }
        if (v.containsKey("a_init")) {
            aInit = normalizeInit(String.valueOf(v.get("a_init")));
        }
        if (v.containsKey("b_init")) {
            bInit = normalizeInit(String.valueOf(v.get("b_init")));
        }
        long seed = v.containsKey("seed") ? integer(v.get("seed"), "seed") : 42;
        return new LoraConfig(r, alpha, dropout, regex, names, exclude, layers, rp, ap, rslora, aInit, bInit,
                seed);
    }

    private static String normalizeInit(String s) {
        String n = s.toLowerCase(java.util.Locale.ROOT);
        return switch (n) {
            case "zero", "zeros" -> "zeros";
            case "one", "ones" -> "ones";
            case "normal" -> "normal";
            case "gaussian" -> "gaussian";
            case "xavier_uniform", "xavieruniform" -> "xavier_uniform";
            case "kaiming_uniform", "he_uniform", "heuniform" -> "kaiming_uniform";
            default -> throw new PetException("lora: unknown initialiser '" + s + "'; expected one of "
                    + new TreeSet<>(INITS));
        };
    }

    private static int integer(Object o, String key) {
        return dev.pet.api.PetConfigs.integer("lora", java.util.Collections.singletonMap(key, o), key, 0);
    }

    private static double number(Object o, String key) {
        if (o instanceof Number n) {
            return n.doubleValue();
        }
        throw new PetException("lora: " + key + " must be a number, found " + o);
    }

    private static boolean bool(Object o, String key) {
        if (o instanceof Boolean b) {
            return b;
        }
        throw new PetException("lora: " + key + " must be true or false, found " + o);
    }

    private static List<String> strings(Object o, String key) {
        if (o == null) {
            return List.of();
        }
        if (o instanceof String s) {
            return List.of(s);
        }
        if (o instanceof List<?> l) {
            return l.stream().map(String::valueOf).toList();
        }
        throw new PetException("lora: " + key + " must be a name or a list of names, found " + o);
    }

    private static Map<String, Object> map(Object o, String key) {
        if (o == null) {
            return Map.of();
        }
        if (o instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            m.forEach((k, x) -> out.put(String.valueOf(k), x));
            return out;
        }
        throw new PetException("lora: " + key + " must be a mapping, found " + o);
    }

    /** Whether a module path is selected by a target or exclusion name (exact, or as a dotted suffix). */
    static boolean nameMatches(String path, String name) {
        return path.equals(name) || path.endsWith("." + name);
    }

    /** Whether {@code path} is one this config adapts. */
    boolean targets(String path, int layer) {
        boolean hit = targetRegex != null ? path.matches(targetRegex)
                : targetNames.stream().anyMatch(n -> nameMatches(path, n));
        if (!hit) {
            return false;
        }
        if (excludeModules.stream().anyMatch(n -> nameMatches(path, n) || path.matches(n))) {
            return false;
        }
        return layersToTransform.isEmpty() || layersToTransform.contains(layer);
    }

    private static boolean patternMatches(String path, String key) {
        return nameMatches(path, key) || path.matches(".*\\." + key) || path.matches(key);
    }

    int rankFor(String path) {
        for (Map.Entry<String, Integer> e : rankPattern.entrySet()) {
            if (patternMatches(path, e.getKey())) {
                return e.getValue();
            }
        }
        return rank;
    }

    double alphaFor(String path) {
        for (Map.Entry<String, Double> e : alphaPattern.entrySet()) {
            if (patternMatches(path, e.getKey())) {
                return e.getValue();
            }
        }
        return alpha;
    }

    /** PEFT's scaling: alpha / r, or alpha / √r with rsLoRA. */
    double scalingFor(String path) {
        int r = rankFor(path);
        return useRslora ? alphaFor(path) / Math.sqrt(r) : alphaFor(path) / r;
    }
}
