package dev.pet.api;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which linear modules of a model a PET method adapts: the one place where {@code target_modules},
 * {@code exclude_modules}, {@code layers_to_transform} and {@code layers_pattern} are interpreted, with the
 * semantics of PEFT's {@code check_target_module_exists}, for every algorithm and every model family (matching
 * is on the module names of {@link ModelAnatomy#linears()}).
 *
 * <ul>
 *   <li>a list of names selects a module whose name equals an entry or ends with {@code "." + entry};</li>
 *   <li>a string is a regular expression that must match the whole name;</li>
 *   <li>{@value #ALL_LINEAR} selects every linear module except the output head (the one producing the logits),
 *       expanded, as PEFT does, to the set of their last name components;</li>
 *   <li>no target at all means the model family's default ({@link ModelAnatomy#defaultTargetModules()});</li>
 *   <li>exclusions use the same two forms and win over targets;</li>
 *   <li>{@code layers_to_transform} keeps list-matched modules whose block index is listed; the index is the
 *       number after the layer container in the name ({@code model.layers.3.mlp} → 3): the first
 *       {@code <name>.<digits>.} by default, {@code <layers_pattern>.<digits>.} when a pattern is given. As in
 *       PEFT, it cannot be combined with a regex or {@value #ALL_LINEAR} target.</li>
 * </ul>
 *
 * @param regex         the target regex, or null
 * @param names         the target names (or {@value #ALL_LINEAR} alone), or null when {@code regex} is given or
 *                      the family default applies
 * @param excludeRegex  the exclusion regex, or null
 * @param excludeNames  excluded names
 * @param layers        block indices to adapt; empty for all
 * @param layersPattern names of the layer container that {@code layers} index ({@code h}, {@code layers}); empty
 *                      for the default rule
 */
public record TargetModules(String regex, List<String> names, String excludeRegex, List<String> excludeNames,
        List<Integer> layers, List<String> layersPattern) {
    /** PEFT's shorthand for every linear layer but the output head. */
    public static final String ALL_LINEAR = "all-linear";
    private static final Pattern DEFAULT_LAYER_INDEX = Pattern.compile(".*\\.[^.]*\\.(\\d+)\\..*");

    public TargetModules {
        names = names == null ? null : List.copyOf(names);
        excludeNames = excludeNames == null ? List.of() : List.copyOf(excludeNames);
        layers = layers == null ? List.of() : List.copyOf(layers);
        layersPattern = layersPattern == null ? List.of() : List.copyOf(layersPattern);
        if (regex != null && names != null) {
            throw new IllegalArgumentException("target_modules is either a regex or a list of names, not both");
        }
        checkRegex("target_modules", regex);
        checkRegex("exclude_modules", excludeRegex);
        if (!layers.isEmpty() && (regex != null || isAllLinear(names))) {
            throw new PetConfigException("pet", "layers_to_transform", "cannot be used when target_modules is a "
                    + "string (a regex or '" + ALL_LINEAR + "'); give target_modules as a list of names");
        }
        if (!layersPattern.isEmpty() && layers.isEmpty()) {
            throw new PetConfigException("pet", "layers_pattern", "needs layers_to_transform");
        }
    }

    /**
     * Binds the four options from a {@code pet_config}: {@code target_modules} (a string or a list of names),
     * {@code exclude_modules}, {@code layers_to_transform} (an integer or a list) and {@code layers_pattern} (a
     * string or a list), under the canonical option names given.
     */
    public static TargetModules bind(PetConfigs v, String targetOption, String excludeOption, String layersOption,
            String patternOption) {
        String regex = null;
        List<String> names = null;
        Object target = v.get(targetOption);
        if (target instanceof String s) {
            if (s.equalsIgnoreCase(ALL_LINEAR)) {
                names = List.of(ALL_LINEAR);
            } else {
                regex = s;
            }
        } else if (target instanceof List<?> l) {
            names = l.stream().map(String::valueOf).toList();
        } else if (target != null) {
            throw v.error(targetOption, "must be a regex string, '" + ALL_LINEAR + "' or a list of names, found "
                    + target);
        }
        Object exclude = v.get(excludeOption);
        String excludeRegex = exclude instanceof String s ? s : null;
        List<String> excludeNames = exclude instanceof String ? List.of() : v.strings(excludeOption);
        List<Integer> layers = v.integers(layersOption);
        List<String> pattern = v.strings(patternOption);
        try {
            return new TargetModules(regex, names, excludeRegex, excludeNames, layers, pattern);
        } catch (PetConfigException e) {
            String option = switch (e.key()) {
                case "target_modules" -> targetOption;
                case "exclude_modules" -> excludeOption;
                case "layers_to_transform" -> layersOption;
                default -> patternOption;
            };
            throw v.error(option, e.problem());
        }
    }

    /** Targets given as names (exact or dotted suffix), without exclusions or layer filters. */
    public static TargetModules named(List<String> names) {
        return new TargetModules(null, Objects.requireNonNull(names, "names"), null, List.of(), List.of(), List.of());
    }

    /** Whether the family default applies (no target given). */
    public boolean isDefault() {
        return regex == null && names == null;
    }

    /** The {@code target_modules} value as PEFT writes it in {@code adapter_config.json}: a string or a list. */
    public Object targetModulesValue() {
        if (regex != null) {
            return regex;
        }
        return isAllLinear(names) ? ALL_LINEAR : names;
    }

    /**
     * PEFT's {@code check_target_module_exists} for one module name, with targets and exclusions as given
     * ({@value #ALL_LINEAR} and the family default are resolved by {@link #select}).
     */
    public boolean matches(String name) {
        return matches(name, regex, names);
    }

    private boolean matches(String name, String targetRegex, List<String> targetNames) {
        if (excludeRegex != null ? name.matches(excludeRegex) : matchesName(name, excludeNames)) {
            return false;
        }
        if (targetRegex != null) {
            return name.matches(targetRegex);
        }
        if (targetNames == null || !matchesName(name, targetNames)) {
            return false;
        }
        if (layers.isEmpty()) {
            return true;
        }
        Integer index = layerIndex(name);
        return index != null && layers.contains(index);
    }

    /** The block index PEFT reads from a module name, or null when the name has none. */
    Integer layerIndex(String name) {
        if (layersPattern.isEmpty()) {
            Matcher m = DEFAULT_LAYER_INDEX.matcher(name);
            return m.matches() ? Integer.valueOf(m.group(1)) : null;
        }
        for (String p : layersPattern) {
            Matcher m = Pattern.compile(".*\\." + p + "\\.(\\d+)\\..*").matcher(name);
            if (m.matches()) {
                return Integer.valueOf(m.group(1));
            }
        }
        return null;
    }

    /**
     * The linear modules of {@code model} this selects, in anatomy order.
     *
     * @throws PetConfigException when nothing matches (listing the candidates), or when no target is given and
     *                            the family names no default
     */
    public List<LinearModule> select(String petType, PretrainedModel model) {
        ModelAnatomy anatomy = model.anatomy();
        List<String> targetNames = names;
        if (isDefault()) {
            targetNames = anatomy.defaultTargetModules();
            if (targetNames.isEmpty()) {
                throw new PetConfigException(petType, "target_modules", "is required: " + model.name()
                        + " names no default; candidates: " + paths(anatomy.linears()));
            }
        } else if (isAllLinear(names)) {
            Set<String> suffixes = new LinkedHashSet<>();
            for (LinearModule m : anatomy.linears()) {
                if (!m.output().equals(anatomy.logits())) {
                    suffixes.add(m.path().substring(m.path().lastIndexOf('.') + 1));
                }
            }
            targetNames = List.copyOf(suffixes);
        }
        List<LinearModule> out = new ArrayList<>();
        for (LinearModule m : anatomy.linears()) {
            if (matches(m.path(), regex, targetNames)) {
                out.add(m);
            }
        }
        if (out.isEmpty()) {
            String shown = regex != null ? "'" + regex + "'"
                    : String.valueOf(isDefault() ? targetNames : targetModulesValue());
            throw new PetConfigException(petType, "target_modules", shown + " matches no module of " + model.name() + describeFilters() + "; candidates: "
                    + paths(anatomy.linears()));
        }
        return out;
    }

    private String describeFilters() {
        StringBuilder sb = new StringBuilder();
        if (excludeRegex != null || !excludeNames.isEmpty()) {
            sb.append(" after exclude_modules ").append(excludeRegex != null ? "'" + excludeRegex + "'" : excludeNames);
        }
        if (!layers.isEmpty()) {
            sb.append(" in layers_to_transform ").append(layers);
        }
        return sb.toString();
    }

    private static List<String> paths(List<LinearModule> modules) {
        return modules.stream().map(LinearModule::path).toList();
    }

    private static boolean matchesName(String name, List<String> candidates) {
        for (String c : candidates) {
            if (name.equals(c) || name.endsWith("." + c)) {
                return true;
            }
        }
        return false;
    }

    private static boolean isAllLinear(List<String> names) {
        return names != null && names.size() == 1 && names.get(0).equalsIgnoreCase(ALL_LINEAR);
    }

    private static void checkRegex(String key, String regex) {
        if (regex == null) {
            return;
        }
        try {
            Pattern.compile(regex);
        } catch (PatternSyntaxException e) {
            throw new PetConfigException("pet", key, "is not a valid regular expression: " + e.getDescription());
        }
    }
}
