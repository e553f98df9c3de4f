package dev.pet.runtime.plugin;

import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetException;
import dev.pet.api.PretrainedModel;

import java.util.Set;

/** A model provider registered on the test class path through META-INF/services. */
public final class ClassPathModelProvider implements ModelProvider {
    @Override
    public String id() {
        return "classpath-test";
    }

    @Override
    public Set<String> aliases() {
        return Set.of();
    }

    @Override
    public PretrainedModel load(ModelRequest request) {
        throw new PetException("test provider loads nothing: " + request.nameOrPath());
    }
}
