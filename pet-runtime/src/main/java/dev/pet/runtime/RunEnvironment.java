package dev.pet.runtime;

import dev.pet.runtime.data.TokenCache;
import dev.pet.runtime.metrics.TrainingListener;
import dev.pet.runtime.plugin.PluginRegistry;

import java.io.PrintStream;
import java.util.Objects;

/**
 * What the runtime hands an engine for one command: the discovered plugins, the listener to report training to
 * (metrics.jsonl, progress, Micrometer), the token cache for datasets, and where user-facing output goes.
 */
public record RunEnvironment(PluginRegistry plugins, TrainingListener listener, TokenCache tokenCache, PrintStream out) {
    public RunEnvironment {
        Objects.requireNonNull(plugins, "plugins");
        Objects.requireNonNull(listener, "listener");
        Objects.requireNonNull(tokenCache, "tokenCache");
        Objects.requireNonNull(out, "out");
    }
}
