package dev.pet.llama;

import dev.pet.api.ModelProvider;
import dev.pet.api.testkit.ModelProviderContract;

class LlamaProviderContractTest extends ModelProviderContract {
    @Override
    protected ModelProvider provider() {
        return new LlamaProvider();
    }

    @Override
    protected String tinyPreset() {
        return "llama-tiny";
    }
}
