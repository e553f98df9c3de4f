package dev.pet.api;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeSet;

/** Binding helpers for PET configs: alias resolution with unknown-key errors, and typed values. */
public final class PetConfigs {
    private PetConfigs() {
    }

    /**
     * Maps every key of {@code raw} through {@code aliases} (accepted name → canonical key); unknown keys and two
     * names for one option with different values are errors naming the keys.
     */
    public static Map<String, Object> canonical(String petType, Map<String, Object> raw, Map<String, String> aliases) {
        Map<String, Object> v = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : raw.entrySet()) {
            String c = aliases.get(e.getKey());
            if (c == null) {
                throw new PetException(petType + ": unknown pet_config key '" + e.getKey() + "'; valid keys: "
                        + new TreeSet<>(aliases.keySet()));
            }
            if (v.containsKey(c) && !sameValue(v.get(c), e.getValue())) {
                throw new PetException(petType + ": '" + e.getKey() + "' conflicts with another name for the same "
                        + "option (" + v.get(c) + " vs " + e.getValue() + ")");
            }
            v.put(c, e.getValue());
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
        return java.util.Objects.equals(a, b);
    }

    public static int integer(String petType, Map<String, Object> v, String key, int dflt) {
        Object o = v.getOrDefault(key, dflt);
        if (o instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue())) {
            if (Math.abs(n.doubleValue()) > Integer.MAX_VALUE) {
                throw new PetException(petType + ": " + key + " " + o + " is out of range (at most "
                        + Integer.MAX_VALUE + ")");
            }
            return n.intValue();
        }
        throw new PetException(petType + ": " + key + " must be an integer, found " + o);
    }

    public static boolean bool(String petType, Map<String, Object> v, String key, boolean dflt) {
        Object o = v.getOrDefault(key, dflt);
        if (o instanceof Boolean b) {
            return b;
        }
        throw new PetException(petType + ": " + key + " must be true or false, found " + o);
    }

    public static String string(String petType, Map<String, Object> v, String key, String dflt) {
        Object o = v.getOrDefault(key, dflt);
        if (o instanceof String s) {
            return s;
        }
        throw new PetException(petType + ": " + key + " must be a string, found " + o);
    }
}
