package dev.pet.runtime.plugin;

import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class PluginRegistryTest {
    @TempDir
    Path dir;

    private PluginRegistry discover(Path plugins) {
        return PluginRegistry.discover(List.of(PluginKind.MODEL), getClass().getClassLoader(), plugins);
    }

    @Test
    void findsClassPathProviders() {
        PluginRegistry registry = discover(null);
        Plugin<ModelProvider> plugin = registry.require(PluginKind.MODEL, "classpath-test");
        assertEquals(ClassPathModelProvider.class, plugin.provider().getClass());
        assertTrue(plugin.location().contains("test-classes"), plugin.location());
        assertEquals("unknown", plugin.version());
        assertTrue(registry.layers().isEmpty());
    }

    @Test
    void loadsAThirdPartyJarIntoItsOwnModuleLayer() throws IOException {
        Path plugins = Files.createDirectories(dir.resolve("plugins"));
        Path jar = PluginJars.modelProviderJar(dir, plugins.resolve("acme-models.jar"), "com.acme.models", "acme", "2.5.0");
        PluginRegistry registry = discover(plugins);

        Plugin<ModelProvider> acme = registry.require(PluginKind.MODEL, "acme");
        assertEquals("2.5.0", acme.version());
        assertEquals(jar.toString(), acme.location());
        Class<?> type = acme.provider().getClass();
        assertEquals("com.acme.models.Provider", type.getName());
        Module module = type.getModule();
        assertTrue(module.isNamed(), "loaded as a module");
        assertEquals("acme.models", module.getName());
        assertEquals(registry.layers().get(0), module.getLayer());
        assertNotSame(ModuleLayer.boot(), module.getLayer());
        assertNotSame(getClass().getClassLoader(), acme.loader());
        assertEquals(acme.loader(), type.getClassLoader());
        assertThrows(ClassNotFoundException.class, () -> Class.forName("com.acme.models.Provider", false, getClass().getClassLoader()),
                "plugin classes stay out of the application class loader");

        assertTrue(acme.call(ModelProvider::aliases).contains("context-loader-is-plugin"));
        assertTrue(acme.provider().aliases().contains("context-loader-is-other"), "context loader is only set inside call()");
        PetException e = assertThrows(PetException.class, () -> acme.call(p -> p.load(ModelRequest.of("x"))));
        assertEquals("acme cannot load x", e.getMessage());
        assertEquals(List.of("acme", "classpath-test", "gpt2", "llama"), registry.plugins(PluginKind.MODEL).stream().map(Plugin::id).toList());
    }

    @Test
    void eachJarOrFolderGetsItsOwnLayer() throws IOException {
        Path plugins = Files.createDirectories(dir.resolve("plugins"));
        PluginJars.modelProviderJar(dir, plugins.resolve("one.jar"), "org.one", "one", "1.0");
        PluginJars.modelProviderJar(dir, plugins.resolve("two-folder").resolve("two-3.1.jar"), "org.two", "two", "3.1");
        Files.writeString(plugins.resolve("README.txt"), "not a plugin");
        PluginRegistry registry = discover(plugins);
        assertEquals(2, registry.layers().size());
        Plugin<ModelProvider> one = registry.require(PluginKind.MODEL, "one");
        Plugin<ModelProvider> two = registry.require(PluginKind.MODEL, "two");
        assertNotSame(one.loader(), two.loader());
        assertEquals(plugins.resolve("two-folder").toString(), two.location());
        assertEquals("3.1", two.version());
        assertThrows(ClassNotFoundException.class, () -> Class.forName("org.one.Provider", false, two.loader()),
                "plugins cannot see each other");
    }

    @Test
    void duplicateIdsFailNamingBothLocations() throws IOException {
        Path plugins = Files.createDirectories(dir.resolve("plugins"));
        Path first = PluginJars.modelProviderJar(dir, plugins.resolve("a.jar"), "org.a", "same", "1");
        Path second = PluginJars.modelProviderJar(dir.resolve("w2"), plugins.resolve("b.jar"), "org.b", "same", "2");
        PluginException e = assertThrows(PluginException.class, () -> discover(plugins));
        assertEquals("duplicate model plugin id 'same': " + first + " and " + second, e.getMessage());
    }

    @Test
    void unknownIdListsTheInstalledOnes() {
        PluginException e = assertThrows(PluginException.class, () -> discover(null).require(PluginKind.MODEL, "gpt3"));
        assertEquals("no model plugin 'gpt3'; installed: classpath-test, gpt2, llama", e.getMessage());
    }

    @Test
    void brokenJarsAreListedWithTheirCauseAndTheOthersStayUsable() throws IOException {
        Path plugins = Files.createDirectories(dir.resolve("plugins"));
        Files.write(plugins.resolve("a-not-a-jar.jar"), new byte[] {1, 2, 3, 4});
        PluginJars.modelProviderJar(dir, plugins.resolve("b-init-fails.jar"), "org.bad", "bad", "1",
                "static { if (Boolean.parseBoolean(\"true\")) { throw new IllegalStateException(\"no licence key\"); } }");
        Path noClass = plugins.resolve("c-no-provider.jar");
        try (var out = new java.util.jar.JarOutputStream(Files.newOutputStream(noClass))) {
            out.putNextEntry(new java.util.jar.JarEntry("META-INF/services/dev.pet.api.ModelProvider"));
            out.write("org.gone.Provider\n".getBytes(java.nio.charset.StandardCharsets.UTF_8));
        }
        PluginJars.modelProviderJar(dir, plugins.resolve("d-good.jar"), "org.good", "good", "1.0");

        PluginRegistry registry = discover(plugins);
        assertEquals("good", registry.require(PluginKind.MODEL, "good").id(), "a good plugin stays usable");
        List<PluginFailure> failures = registry.failures();
        assertEquals(List.of(plugins.resolve("a-not-a-jar.jar").toString(), plugins.resolve("b-init-fails.jar").toString(),
                noClass.toString()), failures.stream().map(PluginFailure::location).toList());
        assertTrue(failures.get(0).error().startsWith("cannot load plugin " + plugins.resolve("a-not-a-jar.jar")),
                failures.get(0).error());
        assertTrue(failures.get(1).error().contains("IllegalStateException: no licence key"), failures.get(1).error());
        assertTrue(failures.get(2).error().contains("org.gone.Provider"), failures.get(2).error());
        failures.forEach(f -> assertFalse(f.error().contains("\n"), "one line: " + f.error()));
        failures.forEach(f -> assertFalse(f.error().contains("explicit plugin modules need"), f.error()));
    }

    @Test
    void aPluginJarOnTheClassPathKnowsItsVersionFromTheManifest() {
        // Under Maven the gpt2 plugin is models-gpt2's packaged JAR on this test's class path.
        Plugin<ModelProvider> gpt2 = discover(null).require(PluginKind.MODEL, "gpt2");
        org.junit.jupiter.api.Assumptions.assumeTrue(gpt2.location().endsWith(".jar"), "run from packaged JARs");
        assertTrue(gpt2.version().matches("\\d+\\.\\d+\\.\\d+.*"), gpt2.version() + " from " + gpt2.location());
    }

    @Test
    void discoveryIsQuietByDefaultAndLogsAtDebugLevel() {
        java.util.logging.Logger logger = java.util.logging.Logger.getLogger("dev.pet.runtime.plugin");
        List<java.util.logging.LogRecord> records = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler handler = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                records.add(r);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        java.util.logging.Level before = logger.getLevel();
        logger.addHandler(handler);
        logger.setLevel(java.util.logging.Level.ALL);
        try {
            discover(null);
        } finally {
            logger.removeHandler(handler);
            logger.setLevel(before);
        }
        assertFalse(records.isEmpty(), "every plugin is logged");
        for (java.util.logging.LogRecord r : records) {
            assertTrue(r.getLevel().intValue() < java.util.logging.Level.INFO.intValue(),
                    "below INFO, so a default logging setup prints nothing: " + r.getLevel() + " " + r.getMessage());
        }
    }
}
