package dev.pet.lora;

import dev.pet.api.PetConfig;
import dev.pet.api.PetConfigException;
import dev.pet.api.PetConfigs;
import dev.pet.api.TargetModules;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;

/**
 * LoRA options, bound from the MindFormers/MindPet names or the Hugging Face PEFT names for the same thing.
 *
 * @param rank             {@code r} / {@code lora_rank}
 * @param alpha            {@code lora_alpha}
 * @param dropout          {@code lora_dropout}, applied to the LoRA branch input while training
 * @param targets          {@code target_modules} ({@code reg_rules}), {@code exclude_modules},
 *                         {@code layers_to_transform}, {@code layers_pattern}, matched as PEFT does
 * @param rankPattern      per-module rank overrides (key matched as a dotted suffix or regex)
 * @param alphaPattern     per-module alpha overrides
 * @param useRslora        scaling alpha/√r instead of alpha/r
 * @param aInit            initialisation of A: {@code kaiming_uniform} (PEFT default), {@code gaussian}, {@code normal},
 *                         {@code xavier_uniform}, {@code zeros}, {@code ones}
 * @param bInit            initialisation of B: {@code zeros} (default) or the same choices
 * @param seed             seed of the initialisation
 */
public record LoraConfig(int rank, double alpha, double dropout, TargetModules targets,
        Map<String, Integer> rankPattern, Map<String, Double> alphaPattern, boolean useRslora, String aInit,
        String bInit, long seed) implements PetConfig {
    static final String TYPE = "lora";
    static final Set<String> INITS = Set.of("kaiming_uniform", "gaussian", "normal", "xavier_uniform", "zeros",
            "ones");

    public LoraConfig {
        if (rank < 1) {
            throw new PetConfigException(TYPE, "r", "must be >= 1, found " + rank);
        }
        if (dropout < 0 || dropout >= 1) {
            throw new PetConfigException(TYPE, "lora_dropout", "must be in [0, 1), found " + dropout);
        }
        Objects.requireNonNull(targets, "targets");
        rankPattern = rankPattern == null ? Map.of() : Map.copyOf(rankPattern);
        alphaPattern = alphaPattern == null ? Map.of() : Map.copyOf(alphaPattern);
        if (!INITS.contains(aInit)) {
            throw new PetConfigException(TYPE, "lora_a_init", "must be one of " + new TreeSet<>(INITS) + ", found '"
                    + aInit + "'");
        }
        if (!INITS.contains(bInit)) {
            throw new PetConfigException(TYPE, "lora_b_init", "must be one of " + new TreeSet<>(INITS) + ", found '"
                    + bInit + "'");
        }
    }

    @Override
    public String petType() {
        return TYPE;
    }

    /** Key aliases: each accepted name and the canonical (PEFT) option it sets. */
    private static final Map<String, String> KEYS = new LinkedHashMap<>();

    static {
        KEYS.put("r", "r");
        KEYS.put("lora_rank", "r");
        KEYS.put("rank", "r");
        KEYS.put("lora_alpha", "lora_alpha");
        KEYS.put("alpha", "lora_alpha");
        KEYS.put("lora_dropout", "lora_dropout");
        KEYS.put("target_modules", "target_modules");
        KEYS.put("reg_rules", "target_modules");
        KEYS.put("exclude_modules", "exclude_modules");
        KEYS.put("layers_to_transform", "layers_to_transform");
        KEYS.put("layers_pattern", "layers_pattern");
        KEYS.put("rank_pattern", "rank_pattern");
        KEYS.put("alpha_pattern", "alpha_pattern");
        KEYS.put("use_rslora", "use_rslora");
        KEYS.put("init_lora_weights", "init_lora_weights");
        KEYS.put("lora_a_init", "lora_a_init");
        KEYS.put("lora_b_init", "lora_b_init");
        KEYS.put("seed", "seed");
        KEYS.put("bias", "bias");
        KEYS.put("task_type", "task_type");
        KEYS.put("fan_in_fan_out", "fan_in_fan_out");
    }

    /** Binds a plain map; unknown keys are errors that list the valid ones. */
    static LoraConfig parse(Map<String, Object> raw) {
        PetConfigs v = PetConfigs.bind(TYPE, raw, KEYS);
        if (v.has("bias") && !"none".equals(String.valueOf(v.get("bias")))) {
            throw v.error("bias", "'" + v.get("bias") + "' is not supported (only 'none'); use the bitfit method "
                    + "to train biases");
        }
        int r = v.integer("r", 8);
        double alpha = v.number("lora_alpha", 2 * r);
        double dropout = v.number("lora_dropout", 0.0);
        TargetModules targets = TargetModules.bind(v, "target_modules", "exclude_modules", "layers_to_transform",
                "layers_pattern");
        Map<String, Integer> rp = new LinkedHashMap<>();
        v.map("rank_pattern").forEach((k, x) -> rp.put(k, v.integerValue("rank_pattern", x)));
        Map<String, Double> ap = new LinkedHashMap<>();
        v.map("alpha_pattern").forEach((k, x) -> ap.put(k, v.numberValue("alpha_pattern", x)));
        boolean rslora = v.bool("use_rslora", false);
        String aInit = "kaiming_uniform";
        String bInit = "zeros";
        Object init = v.get("init_lora_weights");
        if (init != null) {
            String s = String.valueOf(init).toLowerCase(java.util.Locale.ROOT);
            if (s.equals("gaussian")) {
                aInit = "gaussian";
            } else if (!s.equals("true")) {
                throw v.error("init_lora_weights", "must be true or 'gaussian', found " + init);
            }
        }
        if (v.has("lora_a_init")) {
            aInit = normalizeInit(v, "lora_a_init");
        }
        if (v.has("lora_b_init")) {
            bInit = normalizeInit(v, "lora_b_init");
        }
        long seed = v.longValue("seed", 42);
        String a = aInit;
        String b = bInit;
        return v.build(() -> new LoraConfig(r, alpha, dropout, targets, rp, ap, rslora, a, b, seed));
    }

    private static String normalizeInit(PetConfigs v, String option) {
        String s = String.valueOf(v.get(option));
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "zero", "zeros" -> "zeros";
            case "one", "ones" -> "ones";
            case "normal" -> "normal";
            case "gaussian" -> "gaussian";
            case "xavier_uniform", "xavieruniform" -> "xavier_uniform";
            case "kaiming_uniform", "he_uniform", "heuniform" -> "kaiming_uniform";
            default -> throw v.error(option, "names an unknown initialiser '" + s + "'; expected one of "
                    + new TreeSet<>(INITS));
        };
    }

    private static boolean patternMatches(String path, String key) {
        return path.equals(key) || path.endsWith("." + key) || path.matches(".*\\." + key) || path.matches(key);
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
