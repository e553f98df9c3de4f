package dev.pet.gpt2;

import dev.pet.api.ModelProvider;
import dev.pet.api.ModelRequest;
import dev.pet.api.PretrainedModel;
import java.util.Set;

/** The {@code gpt2} model provider. */
public final class Gpt2Provider implements ModelProvider {
    @Override
    public String id() {
        return "gpt2";
    }

    @Override
    public Set<String> aliases() {
        return Set.of("gpt2-tiny", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2", "gpt2lmheadmodel");
    }

    @Override
    public PretrainedModel load(ModelRequest request) {
        throw new UnsupportedOperationException();
    }
}
