package dev.pet.runtime.plugin;

import dev.pet.api.ModelProvider;

import java.util.Objects;
import java.util.function.Function;

/**
 * A kind of plugin the runtime discovers: a display name ({@code model}, {@code pet}), the service interface, and
 * how to read a provider's id. New kinds (the PET adapter SPI) are one constant each.
 */
public record PluginKind<S>(String name, Class<S> service, Function<? super S, String> idOf) {
    /** Model families ({@link ModelProvider}). */
    public static final PluginKind<ModelProvider> MODEL = new PluginKind<>("model", ModelProvider.class, ModelProvider::id);
    public static final PluginKind<dev.pet.api.PetAdapter> PET = new PluginKind<>("pet", dev.pet.api.PetAdapter.class,
            dev.pet.api.PetAdapter::type);

    public PluginKind {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(service, "service");
        Objects.requireNonNull(idOf, "idOf");
    }
}
