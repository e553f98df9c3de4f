package dev.pet.runtime.plugin;

import java.io.IOException;
import java.lang.module.Configuration;
import java.lang.module.FindException;

import java.lang.module.ModuleFinder;
import java.lang.module.ModuleReference;
import java.lang.module.ResolutionException;
import java.lang.LayerInstantiationException;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.jar.JarFile;
import java.util.jar.Manifest;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * Finds plugins: with {@link ServiceLoader} on the runtime's own class/module path, and in a {@code plugins/}
 * directory where every {@code .jar}, or every folder of jars, gets its own {@link ModuleLayer} with its own class
 * loader (parent: the layer and loader of the runtime), so plugins cannot see each other's classes. Jars without a
 * {@code module-info} load as automatic modules (they read the class path); explicit plugin modules that
 * {@code requires dev.pet.api} need the runtime itself on the module path, as the distribution's launcher puts it.
 * Ids must be unique per kind; a duplicate fails naming both locations. Every plugin is logged with id, version and
 * location at DEBUG level (logger {@code dev.pet.runtime.plugin}): an embedding application stays quiet unless it
 * asks; {@code pet plugins} shows the same. A jar or folder that cannot be loaded (not a jar, a missing provider
 * class, an exception in a static initialiser, ...) does not stop the others: it becomes a {@link PluginFailure}
 * whose one-line error includes the root cause, and is logged as a warning.
 */
public final class PluginRegistry {
    private static final System.Logger LOG = System.getLogger("dev.pet.runtime.plugin");

    private final Map<PluginKind<?>, List<Plugin<?>>> plugins;
    private final List<ModuleLayer> layers;
    private final List<PluginFailure> failures;

    private PluginRegistry(Map<PluginKind<?>, List<Plugin<?>>> plugins, List<ModuleLayer> layers,
            List<PluginFailure> failures) {
        this.plugins = plugins;
        this.layers = List.copyOf(layers);
        this.failures = List.copyOf(failures);
    }

    /**
     * Discovers providers of {@code kinds}: from {@code parentLoader} (the class path) and from each jar or folder in
     * {@code pluginsDir} (skipped when null or absent).
     */
    public static PluginRegistry discover(List<PluginKind<?>> kinds, ClassLoader parentLoader, Path pluginsDir) {
        Objects.requireNonNull(kinds, "kinds");
        Objects.requireNonNull(parentLoader, "parentLoader");
        Map<PluginKind<?>, List<Plugin<?>>> found = new LinkedHashMap<>();
        kinds.forEach(k -> found.put(k, new ArrayList<>()));
        for (PluginKind<?> kind : kinds) {
            loadFromClassPath(kind, parentLoader, found.get(kind));
        }
        List<ModuleLayer> layers = new ArrayList<>();
        List<PluginFailure> failures = new ArrayList<>();
        if (pluginsDir != null && Files.isDirectory(pluginsDir)) {
            for (Path entry : pluginEntries(pluginsDir)) {
                try {
                    ModuleLayer layer = defineLayer(entry, parentLoader);
                    Map<PluginKind<?>, List<Plugin<?>>> fromEntry = new LinkedHashMap<>();
                    for (PluginKind<?> kind : kinds) {
                        fromEntry.put(kind, new ArrayList<>());
                        loadFromLayer(kind, layer, entry, fromEntry.get(kind));
                    }
                    // All of an entry's providers, or none of them.
                    layers.add(layer);
                    fromEntry.forEach((kind, list) -> found.get(kind).addAll(list));
                } catch (RuntimeException | LinkageError | ServiceConfigurationError e) {
                    PluginFailure failure = new PluginFailure(entry.toString(), oneLine(e));
                    LOG.log(System.Logger.Level.WARNING, "plugin {0} is broken and was skipped: {1}", entry,
                            failure.error());
                    failures.add(failure);
                }
            }
        }
        Map<PluginKind<?>, List<Plugin<?>>> immutable = new LinkedHashMap<>();
        found.forEach((kind, list) -> {
            checkUnique(kind, list);
            list.sort(Comparator.comparing(Plugin::id));
            list.forEach(p -> LOG.log(System.Logger.Level.DEBUG, "{0} plugin {1} {2} from {3}", kind.name(), p.id(),
                    p.version(), p.location()));
            immutable.put(kind, List.copyOf(list));
        });
        return new PluginRegistry(immutable, layers, failures);
    }

    /** Jars or folders of the plugins directory that could not be loaded, in directory order. */
    public List<PluginFailure> failures() {
        return failures;
    }

    /** A throwable and its causes in one line, each cause added once: the root cause is what users need. */
    static String oneLine(Throwable e) {
        StringBuilder sb = new StringBuilder();
        java.util.Set<Throwable> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
        for (Throwable t = e; t != null && seen.add(t); t = t.getCause()) {
            String text = t.getMessage() == null || t.getMessage().isBlank() ? t.getClass().getName()
                    : t == e || t instanceof PluginException ? t.getMessage()
                    : t.getClass().getSimpleName() + ": " + t.getMessage();
            if (sb.indexOf(t.getMessage() == null ? text : t.getMessage()) < 0) {
                sb.append(sb.length() == 0 ? "" : "; caused by ").append(text);
            }
        }
        return sb.toString().replace('\n', ' ');
    }

    /** The plugins of one kind, sorted by id. */
    @SuppressWarnings("unchecked")
    public <S> List<Plugin<S>> plugins(PluginKind<S> kind) {
        List<Plugin<?>> list = plugins.get(kind);
        if (list == null) {
            throw new IllegalArgumentException("plugin kind " + kind.name() + " was not discovered");
        }
        return (List<Plugin<S>>) (List<?>) list;
    }

    /** Every discovered plugin, kind by kind. */
    public List<Plugin<?>> all() {
        return plugins.values().stream().flatMap(List::stream).toList();
    }

    /** The plugin of {@code kind} with {@code id}, or a clear error listing the ids there are. */
    public <S> Plugin<S> require(PluginKind<S> kind, String id) {
        return find(kind, id).orElseThrow(() -> new PluginException("no " + kind.name() + " plugin '" + id
                + "'; installed: " + plugins(kind).stream().map(Plugin::id).collect(Collectors.joining(", "))));
    }

    public <S> Optional<Plugin<S>> find(PluginKind<S> kind, String id) {
        return plugins(kind).stream().filter(p -> p.id().equals(id)).findFirst();
    }

    /** The module layers created for the plugins directory, one per jar or folder. */
    public List<ModuleLayer> layers() {
        return layers;
    }

    private static List<Path> pluginEntries(Path pluginsDir) {
        try (Stream<Path> list = Files.list(pluginsDir)) {
            return list.filter(p -> Files.isDirectory(p) || p.getFileName().toString().endsWith(".jar"))
                    .filter(p -> !p.getFileName().toString().startsWith("."))
                    .sorted().toList();
        } catch (IOException e) {
            throw new PluginException("cannot list plugins directory " + pluginsDir + ": " + e.getMessage(), e);
        }
    }

    private static ModuleLayer defineLayer(Path entry, ClassLoader parentLoader) {
        ModuleLayer parent = parentLayer();
        try {
            ModuleFinder finder = ModuleFinder.of(entry);
            Set<ModuleReference> refs = finder.findAll();
            if (refs.isEmpty()) {
                throw new PluginException("plugin " + entry + " contains no jar");
            }
            List<String> roots = refs.stream().map(r -> r.descriptor().name()).sorted().toList();
            Configuration cf = parent.configuration().resolveAndBind(finder, ModuleFinder.of(), roots);
            return ModuleLayer.defineModulesWithOneLoader(cf, List.of(parent), parentLoader).layer();
        } catch (FindException | ResolutionException e) {
            // Only when the API itself is on the class path can a plugin's `requires dev.pet.api` not resolve.
            boolean apiMissing = !dev.pet.api.ModelProvider.class.getModule().isNamed()
                    && String.valueOf(e.getMessage()).contains("dev.pet.api");
            throw new PluginException("cannot load plugin " + entry + ": " + oneLine(e)
                    + (apiMissing ? " (explicit plugin modules need the runtime on the module path)" : ""), e);
        } catch (LayerInstantiationException | SecurityException e) {
            throw new PluginException("cannot load plugin " + entry + ": " + e.getMessage(), e);
        }
    }

    /** The layer the API lives in, so plugin modules resolve against the same {@code dev.pet.api}. */
    private static ModuleLayer parentLayer() {
        ModuleLayer apiLayer = dev.pet.api.ModelProvider.class.getModule().getLayer();
        return apiLayer != null ? apiLayer : ModuleLayer.boot();
    }

    private static <S> void loadFromClassPath(PluginKind<S> kind, ClassLoader loader, List<Plugin<?>> out) {
        for (ServiceLoader.Provider<S> provider : providers(ServiceLoader.load(kind.service(), loader), "class path")) {
            Class<?> type = provider.type();
            if (type.getModule().getLayer() != null && type.getModule().getLayer() != parentLayer()
                    && type.getModule().getLayer() != ModuleLayer.boot()) {
                continue;
            }
            S instance = instantiate(provider, "class path");
            out.add(new Plugin<>(kind, id(kind, instance, type), version(type, null), classLocation(type), instance,
                    type.getClassLoader()));
        }
    }

    private static <S> void loadFromLayer(PluginKind<S> kind, ModuleLayer layer, Path entry, List<Plugin<?>> out) {
        for (ServiceLoader.Provider<S> provider : providers(ServiceLoader.load(layer, kind.service()), entry.toString())) {
            Class<?> type = provider.type();
            if (type.getModule().getLayer() != layer) {
                continue; // a provider of a parent layer, already found
            }
            S instance = withContextLoader(type.getClassLoader(), () -> instantiate(provider, entry.toString()));
            out.add(new Plugin<>(kind, withContextLoader(type.getClassLoader(), () -> id(kind, instance, type)),
                    version(type, entry), entry.toString(), instance, type.getClassLoader()));
        }
    }

    private static <S> List<ServiceLoader.Provider<S>> providers(ServiceLoader<S> loader, String where) {
        try {
            return loader.stream().toList();
        } catch (ServiceConfigurationError e) {
            throw new PluginException("bad plugin declaration in " + where + ": " + oneLine(e), e);
        }
    }

    private static <S> S instantiate(ServiceLoader.Provider<S> provider, String where) {
        try {
            return provider.get();
        } catch (ServiceConfigurationError | RuntimeException | LinkageError e) {
            throw new PluginException("cannot create " + provider.type().getName() + " from " + where + ": "
                    + oneLine(e), e);
        }
    }

    private static <S> String id(PluginKind<S> kind, S instance, Class<?> type) {
        String id = kind.idOf().apply(instance);
        if (id == null || !id.matches("[a-z0-9][a-z0-9._-]{0,63}")) {
            throw new PluginException(type.getName() + " has " + kind.name() + " id '" + id
                    + "'; ids are short, lowercase: [a-z0-9][a-z0-9._-]*");
        }
        return id;
    }

    private static <T> T withContextLoader(ClassLoader loader, java.util.function.Supplier<T> action) {
        Thread thread = Thread.currentThread();
        ClassLoader previous = thread.getContextClassLoader();
        thread.setContextClassLoader(loader);
        try {
            return action.get();
        } finally {
            thread.setContextClassLoader(previous);
        }
    }

    private static void checkUnique(PluginKind<?> kind, List<Plugin<?>> list) {
        Map<String, Plugin<?>> byId = new HashMap<>();
        for (Plugin<?> p : list) {
            Plugin<?> other = byId.putIfAbsent(p.id(), p);
            if (other != null) {
                throw new PluginException("duplicate " + kind.name() + " plugin id '" + p.id() + "': " + other.location()
                        + " and " + p.location());
            }
        }
    }

    /** Version from the module descriptor, else the jar manifest's Implementation-Version, else "unknown". */
    static String version(Class<?> type, Path entry) {
        Module module = type.getModule();
        if (module.isNamed() && module.getDescriptor() != null) {
            Optional<String> raw = module.getDescriptor().rawVersion();
            if (raw.isPresent()) {
                return raw.get();
            }
        }
        Package pkg = type.getPackage();
        if (pkg != null && pkg.getImplementationVersion() != null) {
            return pkg.getImplementationVersion();
        }
        Path jar = entry != null ? jarOf(type, entry) : codeSourcePath(type);
        if (jar != null && Files.isRegularFile(jar)) {
            try (JarFile file = new JarFile(jar.toFile())) {
                Manifest manifest = file.getManifest();
                if (manifest != null) {
                    String v = manifest.getMainAttributes().getValue("Implementation-Version");
                    if (v != null) {
                        return v;
                    }
                }
            } catch (IOException ignored) {
                // no readable manifest: the version stays unknown
            }
        }
        return "unknown";
    }

    private static Path jarOf(Class<?> type, Path entry) {
        if (Files.isRegularFile(entry)) {
            return entry;
        }
        Module module = type.getModule();
        if (module.getLayer() != null) {
            return module.getLayer().configuration().findModule(module.getName())
                    .flatMap(r -> r.reference().location())
                    .map(Path::of).orElse(null);
        }
        return null;
    }

    private static Path codeSourcePath(Class<?> type) {
        CodeSource source = type.getProtectionDomain().getCodeSource();
        URL url = source == null ? null : source.getLocation();
        if (url == null) {
            return null;
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException | IllegalArgumentException e) {
            return null;
        }
    }

    private static String classLocation(Class<?> type) {
        Path path = codeSourcePath(type);
        if (path != null) {
            return path.toString();
        }
        Module module = type.getModule();
        return module.isNamed() ? "module " + module.getName() : "class path";
    }

}
