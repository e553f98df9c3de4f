package dev.pet.prefix;

import dev.pet.api.ModelRequest;
import dev.pet.api.PretrainedModel;
import dev.pet.gpt2.Gpt2Provider;
import java.util.Map;

/** A seeded gpt2-tiny and a fixed input ({@link PrefixFamily#GPT2} runs it). */
final class TinyGpt2 {
    static final long[] IDS = {464, 3290, 286, 262, 1578, 11, 290, 50256, 17, 9};
    static final long SEED = 3;
    static final PretrainedModel BASE = new Gpt2Provider().load(new ModelRequest("gpt2-tiny", Map.of(), SEED));

    private TinyGpt2() {
    }
}
