package dev.pet.runtime.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * A YAML mapping being bound to a record: every read marks its key as known, and {@link #finish()} rejects the keys
 * nobody read, naming the full path, the value and the valid keys. Numbers written as text ({@code 1e-4}, which
 * YAML 1.1 reads as a string) are accepted where a number is expected.
 */
final class ConfigNode {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String path;
    private final ObjectNode node;
    private final Set<String> known = new LinkedHashSet<>();

    private ConfigNode(String path, ObjectNode node) {
        this.path = path;
        this.node = node;
    }

    static ConfigNode root(JsonNode node) {
        if (node == null || node.isNull() || node.isMissingNode()) {
            return new ConfigNode("", JSON.createObjectNode());
        }
        if (!node.isObject()) {
            throw new ConfigException("", "expected a mapping at the top level, found " + describe(node));
        }
        return new ConfigNode("", (ObjectNode) node);
    }

    static ConfigNode of(String path, JsonNode node) {
        if (!node.isObject()) {
            throw new ConfigException(path, "expected a mapping, found " + describe(node));
        }
        return new ConfigNode(path, (ObjectNode) node);
    }

    /** The whole mapping, for sections passed through as plain maps (every key there is someone else's). */
    ObjectNode object() {
        return node;
    }

    String path() {
        return path;
    }

    String pathOf(String key) {
        return path.isEmpty() ? key : path + "." + key;
    }

    boolean has(String key) {
        JsonNode v = node.get(key);
        return v != null && !v.isNull();
    }

    /** Marks a key as known without reading it (a key accepted for compatibility and ignored). */
    void accept(String key) {
        known.add(key);
    }

    JsonNode raw(String key) {
        known.add(key);
        JsonNode v = node.get(key);
        return v == null || v.isNull() ? null : v;
    }

    ConfigNode child(String key) {
        JsonNode v = raw(key);
        return v == null ? null : of(pathOf(key), v);
    }

    String string(String key, String defaultValue) {
        JsonNode v = raw(key);
        if (v == null) {
            return defaultValue;
        }
        if (!v.isValueNode() || v.isBinary()) {
            throw new ConfigException(pathOf(key), "expected a string, found " + describe(v));
        }
        return v.asText();
    }

    String requireString(String key) {
        String s = string(key, null);
        if (s == null || s.isBlank()) {
            throw new ConfigException(pathOf(key), "is required but missing");
        }
        return s;
    }

    long longValue(String key, long defaultValue) {
        JsonNode v = raw(key);
        if (v == null) {
            return defaultValue;
        }
        if (v.isIntegralNumber() && v.canConvertToLong()) {
            return v.asLong();
        }
        if (v.isNumber() && v.asDouble() == Math.rint(v.asDouble()) && Math.abs(v.asDouble()) < 9.0e15) {
            return (long) v.asDouble();
        }
        if (v.isTextual()) {
            try {
                return Long.parseLong(v.asText().trim().replace("_", ""));
            } catch (NumberFormatException ignored) {
                // fall through to the error naming the value
            }
        }
        throw new ConfigException(pathOf(key), "expected an integer, found " + describe(v));
    }

    int intValue(String key, int defaultValue) {
        long value = longValue(key, defaultValue);
        if (value < Integer.MIN_VALUE || value > Integer.MAX_VALUE) {
            throw new ConfigException(pathOf(key), "expected a 32-bit integer, found " + value);
        }
        return (int) value;
    }

    double doubleValue(String key, double defaultValue) {
        JsonNode v = raw(key);
        if (v == null) {
            return defaultValue;
        }
        if (v.isNumber()) {
            return v.asDouble();
        }
        if (v.isTextual()) {
            try {
                double d = Double.parseDouble(v.asText().trim());
                if (Double.isFinite(d)) {
                    return d;
                }
            } catch (NumberFormatException ignored) {
                // fall through to the error naming the value
            }
        }
        throw new ConfigException(pathOf(key), "expected a number, found " + describe(v));
    }

    boolean bool(String key, boolean defaultValue) {
        JsonNode v = raw(key);
        if (v == null) {
            return defaultValue;
        }
        if (v.isBoolean()) {
            return v.asBoolean();
        }
        if (v.isTextual()) {
            String s = v.asText().trim().toLowerCase(Locale.ROOT);
            if (s.equals("true") || s.equals("false")) {
                return Boolean.parseBoolean(s);
            }
        }
        throw new ConfigException(pathOf(key), "expected true or false, found " + describe(v));
    }

    /** Reads one of {@code choices} (matched case-insensitively), naming the choices when the value is not one. */
    <E> E choice(String key, Map<String, E> choices, E defaultValue) {
        String s = string(key, null);
        if (s == null) {
            return defaultValue;
        }
        for (Map.Entry<String, E> e : choices.entrySet()) {
            if (e.getKey().equalsIgnoreCase(s.trim())) {
                return e.getValue();
            }
        }
        throw new ConfigException(pathOf(key), "unknown value '" + s + "'; valid choices: "
                + String.join(", ", choices.keySet()) + Suggestions.didYouMean(s, choices.keySet()));
    }

    /** A mapping as a plain, immutable Java map (bound later by whoever owns those keys). */
    Map<String, Object> plainMap(String key) {
        JsonNode v = raw(key);
        if (v == null) {
            return Map.of();
        }
        if (!v.isObject()) {
            throw new ConfigException(pathOf(key), "expected a mapping, found " + describe(v));
        }
        return toPlainMap((ObjectNode) v);
    }

    /** Rejects every key that no reader asked for. */
    void finish() {
        List<String> unknown = new ArrayList<>();
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            if (!known.contains(name)) {
                unknown.add(name);
            }
        }
        if (!unknown.isEmpty()) {
            String name = unknown.get(0);
            throw unknownKey(pathOf(name), name, node.get(name), known);
        }
    }

    static ConfigException unknownKey(String keyPath, String name, JsonNode value, Collection<String> valid) {
        return new ConfigException(keyPath, "unknown key (value " + describe(value) + ")"
                + Suggestions.didYouMean(name, valid) + "; valid keys here: " + String.join(", ", valid));
    }

    static Map<String, Object> toPlainMap(ObjectNode node) {
        Map<String, Object> out = new LinkedHashMap<>();
        node.fields().forEachRemaining(e -> out.put(e.getKey(), toPlain(e.getValue())));
        return java.util.Collections.unmodifiableMap(out);
    }

    static Object toPlain(JsonNode v) {
        Objects.requireNonNull(v, "v");
        if (v.isObject()) {
            return toPlainMap((ObjectNode) v);
        }
        if (v.isArray()) {
            List<Object> list = new ArrayList<>();
            v.forEach(e -> list.add(toPlain(e)));
            return java.util.Collections.unmodifiableList(list);
        }
        if (v.isNull()) {
            return null;
        }
        if (v.isBoolean()) {
            return v.asBoolean();
        }
        if (v.isIntegralNumber()) {
            return v.canConvertToInt() ? (Object) v.asInt() : (Object) v.asLong();
        }
        if (v.isNumber()) {
            return v.asDouble();
        }
        return v.asText();
    }

    static String describe(JsonNode v) {
        if (v == null || v.isNull()) {
            return "null";
        }
        if (v.isObject()) {
            return "a mapping " + abbreviate(v.toString());
        }
        if (v.isArray()) {
            return "a list " + abbreviate(v.toString());
        }
        if (v.isTextual()) {
            return "'" + abbreviate(v.asText()) + "'";
        }
        return v.asText();
    }

    private static String abbreviate(String s) {
        return s.length() > 60 ? s.substring(0, 57) + "..." : s;
    }
}
