package dev.pet.spark;

import dev.pet.runtime.RunEnvironment;
import dev.pet.runtime.config.RunConfig;
import dev.pet.runtime.config.RunConfigLoader;
import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.TrainingListeners;
import dev.pet.runtime.plugin.PluginKind;
import dev.pet.runtime.plugin.PluginRegistry;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Models compiled in this executor JVM for batch inference, by kind, run config and adapter: each is compiled by
 * the first task that needs it and reused by every later partition and task, until the JVM exits.
 */
final class ExecutorModels {
    private static final Map<String, Object> MODELS = new ConcurrentHashMap<>();

    private ExecutorModels() {
    }

    /** What compiles a model from the driver's run config and an adapter directory (null: the run's own). */
    interface Opener<T> {
        T open(RunConfig config, Path adapter, RunEnvironment env);
    }

    static <T> T get(Class<T> kind, String configYaml, String adapter, Opener<T> opener) {
        return kind.cast(MODELS.computeIfAbsent(kind.getName() + "\u0000" + configYaml + "\u0000" + adapter, k -> {
            RunConfig config = RunConfigLoader.parse(configYaml, "the Spark driver's run config", List.of());
            RunEnvironment env = new RunEnvironment(PluginRegistry.discover(PluginKind.ALL,
                    ExecutorModels.class.getClassLoader(), null), new TrainingListeners(List.of()),
                    TokenCache.defaultCache(), new PrintStream(System.err, true));
            return opener.open(config, adapter == null ? null : Path.of(adapter), env);
        }));
    }
}
