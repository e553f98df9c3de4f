package dev.pet.gpt2;

import dev.pet.api.PetException;

/**
 * How to pick new tokens. Greedy when {@code doSample} is false; otherwise logits are divided by
 * {@code temperature}, cut to the {@code topK} largest (0 = no cut) and to the smallest set whose probability
 * reaches {@code topP} (1 = no cut), and sampled from a generator seeded with {@code seed}.
 *
 * @param maxNewTokens most tokens to add
 * @param doSample     sample instead of taking the argmax
 * @param temperature  positive divisor of the logits
 * @param topK         keep only the k most likely tokens; 0 keeps all
 * @param topP         nucleus threshold in (0, 1]
 * @param seed         seed of the sampler
 * @param eosTokenId   stop after generating this token; -1 never stops early
 */
public record GenerationConfig(int maxNewTokens, boolean doSample, double temperature, int topK, double topP,
        long seed, long eosTokenId) {
    public GenerationConfig {
        if (maxNewTokens < 0) {
            throw new PetException("max_new_tokens expected >= 0, found " + maxNewTokens);
        }
        if (!(temperature > 0) || !Double.isFinite(temperature)) {
            throw new PetException("temperature expected a positive number, found " + temperature);
        }
        if (topK < 0) {
            throw new PetException("top_k expected >= 0, found " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new PetException("top_p expected a number in (0, 1], found " + topP);
        }
    }

    /** Greedy decoding of up to {@code maxNewTokens}, stopping at GPT-2's end-of-text (50256). */
    public static GenerationConfig greedy(int maxNewTokens) {
        return new GenerationConfig(maxNewTokens, false, 1.0, 0, 1.0, 0, 50256);
    }

    /** Seeded sampling with the given temperature, top-k and top-p, stopping at end-of-text. */
    public static GenerationConfig sampling(int maxNewTokens, double temperature, int topK, double topP, long seed) {
        return new GenerationConfig(maxNewTokens, true, temperature, topK, topP, seed, 50256);
    }

    public GenerationConfig withEosTokenId(long id) {
        return new GenerationConfig(maxNewTokens, doSample, temperature, topK, topP, seed, id);
    }
}
