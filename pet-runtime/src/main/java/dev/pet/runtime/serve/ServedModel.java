package dev.pet.runtime.serve;

import dev.pet.api.PetException;
import dev.pet.engine.OrtAdapter;
import dev.pet.runtime.generate.TextGenerator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * One base model in memory and the ONNX Runtime adapters registered on it, by name. Requests name the base
 * ({@link #baseName()}) or a registered adapter, never a path. Closing it closes the adapters and the engine.
 */
public final class ServedModel implements AutoCloseable {
    /** Adapter names: what a client can type in {@code model}, nothing path-like. */
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    public static final String ADAPTER_SUFFIX = ".onnx_adapter";

    private final String baseName;
    private final TextGenerator generator;
    private final Map<String, OrtAdapter> adapters;
    private final AutoCloseable engine;

    public ServedModel(String baseName, TextGenerator generator, Map<String, OrtAdapter> adapters,
            AutoCloseable engine) {
        this.baseName = Objects.requireNonNull(baseName, "baseName");
        this.generator = Objects.requireNonNull(generator, "generator");
        this.adapters = Collections.unmodifiableMap(new TreeMap<>(adapters));
        this.engine = Objects.requireNonNull(engine, "engine");
        if (this.adapters.containsKey(baseName)) {
            throw new PetException("adapter name '" + baseName + "' is the base model's name; rename the adapter");
        }
    }

    public String baseName() {
        return baseName;
    }

    public TextGenerator generator() {
        return generator;
    }

    /** Registered adapters by name (sorted). */
    public Map<String, OrtAdapter> adapters() {
        return adapters;
    }

    /** The names a request may give as {@code model}: the base first, then the adapters. */
    public List<String> modelNames() {
        List<String> names = new ArrayList<>();
        names.add(baseName);
        names.addAll(adapters.keySet());
        return names;
    }

    /**
     * Loads the adapters of a directory: each {@code NAME.onnx_adapter} file, and each {@code NAME/} directory holding
     * one {@code .onnx_adapter} (the layout {@code pet export --format ort-adapter} writes).
     */
    public static Map<String, OrtAdapter> loadAdapters(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new PetException("--adapters " + dir + " is not a directory");
        }
        Map<String, Path> found = new TreeMap<>();
        try (Stream<Path> entries = Files.list(dir)) {
            for (Path p : entries.sorted().toList()) {
                String file = p.getFileName().toString();
                if (Files.isRegularFile(p) && file.endsWith(ADAPTER_SUFFIX)) {
                    found.put(file.substring(0, file.length() - ADAPTER_SUFFIX.length()), p);
                } else if (Files.isDirectory(p)) {
                    List<Path> inside;
                    try (Stream<Path> s = Files.list(p)) {
                        inside = s.filter(f -> f.getFileName().toString().endsWith(ADAPTER_SUFFIX)).sorted().toList();
                    }
                    if (inside.size() > 1) {
                        throw new PetException("adapter directory " + p + " holds " + inside.size() + " "
                                + ADAPTER_SUFFIX + " files; expected one");
                    }
                    if (inside.size() == 1) {
                        found.put(file, inside.get(0));
                    }
                }
            }
        } catch (IOException e) {
            throw new PetException("cannot list adapters in " + dir + ": " + e.getMessage(), e);
        }
        Map<String, OrtAdapter> loaded = new TreeMap<>();
        try {
            for (Map.Entry<String, Path> e : found.entrySet()) {
                if (!NAME.matcher(e.getKey()).matches()) {
                    throw new PetException("adapter " + e.getValue() + ": name '" + e.getKey() + "' must be letters, "
                            + "digits, '.', '_' or '-' (at most 128, not starting with a punctuation mark)");
                }
                loaded.put(e.getKey(), OrtAdapter.load(e.getKey(), e.getValue()));
            }
        } catch (RuntimeException e) {
            loaded.values().forEach(OrtAdapter::close);
            throw e;
        }
        return loaded;
    }

    @Override
    public void close() {
        adapters.values().forEach(OrtAdapter::close);
        try {
            engine.close();
        } catch (Exception e) {
            throw new PetException("closing the served model failed: " + e.getMessage(), e);
        }
    }
}
