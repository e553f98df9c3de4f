package dev.pet.api;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.function.Supplier;

/**
 * Binds a plain {@code pet_config} map to typed values: every accepted name (PEFT's and MindFormers'/MindPet's) maps
 * to one canonical option; unknown keys, two names for one option with different values and ill-typed values are
 * {@link PetConfigException}s naming the key as the user wrote it.
 *
 * <pre>{@code
 * PetConfigs v = PetConfigs.bind("lora", raw, KEYS);
 * return v.build(() -> new LoraConfig(v.integer("r", 8), ...));
 * }</pre>
 */
public final class PetConfigs {
    private final String petType;
    private final Map<String, String> aliases;
    private final Map<String, Object> values = new LinkedHashMap<>();
    private final Map<String, String> written = new LinkedHashMap<>();

    private PetConfigs(String petType, Map<String, String> aliases) {
        this.petType = petType;
        this.aliases = aliases;
    }

    /**
     * Maps every key of {@code raw} through {@code aliases} (accepted name → canonical option).
     *
     * @throws PetConfigException for an unknown key or conflicting names of one option
     */
    public static PetConfigs bind(String petType, Map<String, Object> raw, Map<String, String> aliases) {
        Objects.requireNonNull(petType, "petType");
        PetConfigs v = new PetConfigs(petType, Map.copyOf(aliases));
        for (Map.Entry<String, Object> e : raw.entrySet()) {
            String c = aliases.get(e.getKey());
            if (c == null) {
                throw new PetConfigException(petType, e.getKey(), "is not a pet_config key of " + petType
                        + "; valid keys: " + new TreeSet<>(aliases.keySet()));
            }
            if (v.values.containsKey(c) && !sameValue(v.values.get(c), e.getValue())) {
                throw new PetConfigException(petType, e.getKey(), "conflicts with '" + v.written.get(c)
                        + "', another name for the same option (" + v.values.get(c) + " vs " + e.getValue() + ")");
            }
            v.values.put(c, e.getValue());
            v.written.put(c, e.getKey());
        }
        return v;
    }

    /**
     * Whether two config values say the same thing: numbers by value (16 and 16.0), lists as sets (PEFT writes
     * {@code target_modules} as a set), maps entry by entry, anything else by {@code equals}.
     */
    public static boolean sameValue(Object a, Object b) {
        if (a instanceof Number x && b instanceof Number y) {
            return x.doubleValue() == y.doubleValue();
        }
        if (a instanceof java.util.Collection<?> x && b instanceof java.util.Collection<?> y) {
            java.util.Set<String> xs = new TreeSet<>();
            x.forEach(o -> xs.add(String.valueOf(o)));
            java.util.Set<String> ys = new TreeSet<>();
            y.forEach(o -> ys.add(String.valueOf(o)));
            return xs.equals(ys);
        }
        if (a instanceof Map<?, ?> x && b instanceof Map<?, ?> y) {
            if (!x.keySet().equals(y.keySet())) {
                return false;
            }
            for (Object k : x.keySet()) {
                if (!sameValue(x.get(k), y.get(k))) {
                    return false;
                }
            }
            return true;
        }
        return Objects.equals(a, b);
    }

    public String petType() {
        return petType;
    }

    /** Whether the option was given. */
    public boolean has(String option) {
        return values.containsKey(option);
    }

    /** The raw value of an option, or null. */
    public Object get(String option) {
        return values.get(option);
    }

    /** The key the user wrote for an option (or the option's name when it was not given). */
    public String keyOf(String option) {
        return written.getOrDefault(option, option);
    }

    /** An error about an option, naming the key the user wrote. */
    public PetConfigException error(String option, String problem) {
        return new PetConfigException(petType, keyOf(option), problem);
    }

    public int integer(String option, int dflt) {
        return has(option) ? integerValue(option, get(option)) : dflt;
    }

    public long longValue(String option, long dflt) {
        Object o = get(option);
        if (o == null) {
            return dflt;
        }
        if (o instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue())) {
            return n.longValue();
        }
        throw error(option, "must be an integer, found " + o);
    }

    public double number(String option, double dflt) {
        Object o = get(option);
        if (o == null) {
            return dflt;
        }
        if (o instanceof Number n) {
            return n.doubleValue();
        }
        throw error(option, "must be a number, found " + o);
    }

    public boolean bool(String option, boolean dflt) {
        Object o = get(option);
        if (o == null) {
            return dflt;
        }
        if (o instanceof Boolean b) {
            return b;
        }
        throw error(option, "must be true or false, found " + o);
    }

    public String string(String option, String dflt) {
        Object o = get(option);
        if (o == null) {
            return dflt;
        }
        if (o instanceof String s) {
            return s;
        }
        throw error(option, "must be a string, found " + o);
    }

    /** A name or a list of names; empty when absent. */
    public List<String> strings(String option) {
        Object o = get(option);
        if (o == null) {
            return List.of();
        }
        if (o instanceof String s) {
            return List.of(s);
        }
        if (o instanceof List<?> l) {
            return l.stream().map(String::valueOf).toList();
        }
        throw error(option, "must be a name or a list of names, found " + o);
    }

    /** An integer or a list of integers; empty when absent. */
    public List<Integer> integers(String option) {
        Object o = get(option);
        if (o == null) {
            return List.of();
        }
        List<Integer> out = new ArrayList<>();
        if (o instanceof List<?> l) {
            for (Object x : l) {
                out.add(integerValue(option, x));
            }
        } else {
            out.add(integerValue(option, o));
        }
        return out;
    }

    /** A mapping with string keys; empty when absent. */
    public Map<String, Object> map(String option) {
        Object o = get(option);
        if (o == null) {
            return Map.of();
        }
        if (o instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            m.forEach((k, x) -> out.put(String.valueOf(k), x));
            return out;
        }
        throw error(option, "must be a mapping, found " + o);
    }

    /** An integer value found under {@code option} (for entries of lists and mappings too). */
    public int integerValue(String option, Object o) {
        if (o instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue())) {
            if (Math.abs(n.doubleValue()) > Integer.MAX_VALUE) {
                throw error(option, o + " is out of range (at most " + Integer.MAX_VALUE + ")");
            }
            return n.intValue();
        }
        throw error(option, "must be an integer, found " + o);
    }

    /** A number value found under {@code option} (for entries of mappings). */
    public double numberValue(String option, Object o) {
        if (o instanceof Number n) {
            return n.doubleValue();
        }
        throw error(option, "must be a number, found " + o);
    }

    /**
     * Runs a config's constructor; a {@link PetConfigException} its validation throws under an option's name or any
     * accepted alias is reported under the key the user wrote.
     */
    public <C> C build(Supplier<C> constructor) {
        try {
            return constructor.get();
        } catch (PetConfigException e) {
            String option = aliases.getOrDefault(e.key(), e.key());
            return throwAs(e, option);
        }
    }

    private <C> C throwAs(PetConfigException e, String option) {
        String key = keyOf(option);
        throw key.equals(e.key()) ? e : e.withKey(key);
    }
}
