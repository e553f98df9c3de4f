package dev.pet.runtime.plugin;

import java.util.Objects;
import java.util.function.Function;

/**
 * One discovered provider: its kind, id, version ({@code unknown} when neither module descriptor nor manifest has
 * one), where it came from (a jar, a plugin folder, or a class path entry), and the class loader that defined it.
 * Use {@link #call} to run plugin code with that loader as the thread context class loader.
 */
public record Plugin<S>(PluginKind<S> kind, String id, String version, String location, S provider,
                        ClassLoader loader) {
    public Plugin {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(version, "version");
        Objects.requireNonNull(location, "location");
        Objects.requireNonNull(provider, "provider");
    }

    /** Runs {@code action} on the provider with the plugin's class loader as the thread context class loader. */
    public <R> R call(Function<? super S, R> action) {
        Thread thread = Thread.currentThread();
        ClassLoader previous = thread.getContextClassLoader();
        thread.setContextClassLoader(loader);
        try {
            return action.apply(provider);
        } finally {
            thread.setContextClassLoader(previous);
        }
    }
}
