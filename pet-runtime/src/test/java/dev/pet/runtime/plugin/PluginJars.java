package dev.pet.runtime.plugin;

import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import java.util.stream.Stream;

/** Compiles a tiny third-party ModelProvider plugin and packs it as a jar, the way an outside author would. */
public final class PluginJars {
    private PluginJars() {
    }

    /** Builds {@code jar} holding {@code pkg.Provider} whose id is {@code id}, declared in META-INF/services. */
    public static Path modelProviderJar(Path work, Path jar, String pkg, String id, String version) throws IOException {
        return modelProviderJar(work, jar, pkg, id, version, "");
    }

    /** As above, with {@code members} (a static initialiser, a field, ...) added to the provider class. */
    public static Path modelProviderJar(Path work, Path jar, String pkg, String id, String version, String members)
            throws IOException {
        Path src = work.resolve("src-" + id).resolve(pkg.replace('.', '/'));
        Files.createDirectories(src);
        Files.writeString(src.resolve("Provider.java"), """
                package %s;

                import dev.pet.api.ModelProvider;
                import dev.pet.api.ModelRequest;
                import dev.pet.api.PetException;
                import dev.pet.api.PretrainedModel;
                import java.util.Set;

                public final class Provider implements ModelProvider {
                    %s

                    @Override
                    public String id() {
                        return "%s";
                    }

                    @Override
                    public Set<String> aliases() {
                        boolean own = Thread.currentThread().getContextClassLoader() == Provider.class.getClassLoader();
                        return Set.of("%s-tiny", own ? "context-loader-is-plugin" : "context-loader-is-other");
                    }

                    @Override
                    public PretrainedModel load(ModelRequest request) {
                        throw new PetException("%s cannot load " + request.nameOrPath());
                    }
                }
                """.formatted(pkg, members, id, id, id));
        Path classes = work.resolve("classes-" + id);
        Files.createDirectories(classes);
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        ByteArrayOutputStream errors = new ByteArrayOutputStream();
        int rc = compiler.run(null, null, errors, "-d", classes.toString(), "-cp", System.getProperty("java.class.path"),
                "--release", "17", src.resolve("Provider.java").toString());
        if (rc != 0) {
            throw new IllegalStateException("plugin did not compile: " + errors.toString(StandardCharsets.UTF_8));
        }
        Manifest manifest = new Manifest();
        manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        manifest.getMainAttributes().put(Attributes.Name.IMPLEMENTATION_VERSION, version);
        Files.createDirectories(jar.toAbsolutePath().getParent());
        try (OutputStream file = Files.newOutputStream(jar); JarOutputStream out = new JarOutputStream(file, manifest)) {
            out.putNextEntry(new JarEntry("META-INF/services/dev.pet.api.ModelProvider"));
            out.write((pkg + ".Provider\n").getBytes(StandardCharsets.UTF_8));
            out.closeEntry();
            List<Path> classFiles;
            try (Stream<Path> walk = Files.walk(classes)) {
                classFiles = walk.filter(Files::isRegularFile).sorted().toList();
            }
            for (Path c : classFiles) {
                out.putNextEntry(new JarEntry(classes.relativize(c).toString().replace('\\', '/')));
                out.write(Files.readAllBytes(c));
                out.closeEntry();
            }
        }
        return jar;
    }
}
