package dev.pet.runtime.plugin;

import dev.pet.api.ModelProvider;
import dev.pet.api.PetAdapter;

import java.util.Objects;
import java.util.function.Function;

/**
 * A kind of plugin the runtime discovers: a display name ({@code model}, {@code pet}), the service interface, and
 * how to read a provider's id. New kinds (the PET adapter SPI) are one constant each.
 */
public record PluginKind<S>(String name, Class<S> service, Function<? super S, String> idOf) {
    /** Model families ({@link ModelProvider}). */
    public static final PluginKind<ModelProvider> MODEL = new PluginKind<>("model", ModelProvider.class, ModelProvider::id);
    /** PET algorithms ({@link PetAdapter}); raw because a class literal cannot name {@code PetAdapter<?>}. */
    @SuppressWarnings("rawtypes")
    public static final PluginKind<PetAdapter> PET = new PluginKind<>("pet", PetAdapter.class, PetAdapter::type);

    /** Every kind the runtime discovers, for the CLI and the embedding API alike. */
    public static final java.util.List<PluginKind<?>> ALL = java.util.List.of(MODEL, PET);

    public PluginKind {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(service, "service");
        Objects.requireNonNull(idOf, "idOf");
    }
}
