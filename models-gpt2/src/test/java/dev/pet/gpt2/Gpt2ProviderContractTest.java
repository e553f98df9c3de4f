package dev.pet.gpt2;

import dev.pet.api.ModelProvider;
import dev.pet.api.testkit.ModelProviderContract;

class Gpt2ProviderContractTest extends ModelProviderContract {
    @Override
    protected ModelProvider provider() {
        return new Gpt2Provider();
    }

    @Override
    protected String tinyPreset() {
        return "gpt2-tiny";
    }
}
