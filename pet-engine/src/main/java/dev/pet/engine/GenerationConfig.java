package dev.pet.engine;

/**
 * How to pick new tokens, with Hugging Face {@code generate} semantics: the repetition penalty first (a logit of a
 * token already in the sequence is divided by the penalty when positive, multiplied when negative), then greedy
 * argmax when {@code temperature} is 0, else logits / temperature, the {@code topK} largest (0 = all), the smallest
 * set whose probability reaches {@code topP} (1 = all), and a draw from a generator seeded with {@code seed}.
 *
 * @param maxNewTokens      most tokens to add
 * @param temperature       0 for greedy, else a positive divisor of the logits
 * @param topK              keep only the k most likely tokens; 0 keeps all
 * @param topP              nucleus threshold in (0, 1]
 * @param repetitionPenalty 1 for none; above 1 discourages repeating tokens
 * @param seed              seed of the sampler (the same seed gives the same tokens)
 * @param eosTokenId        stop after generating this token (it is not returned); -1 never stops early
 */
public record GenerationConfig(int maxNewTokens, double temperature, int topK, double topP,
        double repetitionPenalty, long seed, long eosTokenId) {
    public GenerationConfig {
        if (maxNewTokens < 0) {
            throw new EngineException("max_new_tokens: expected >= 0, found " + maxNewTokens);
        }
        if (!(temperature >= 0) || !Double.isFinite(temperature)) {
            throw new EngineException("temperature: expected 0 (greedy) or a positive number, found " + temperature);
        }
        if (topK < 0) {
            throw new EngineException("top_k: expected >= 0, found " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new EngineException("top_p: expected a number in (0, 1], found " + topP);
        }
        if (!(repetitionPenalty > 0) || !Double.isFinite(repetitionPenalty)) {
            throw new EngineException("repetition_penalty: expected a positive number, found " + repetitionPenalty);
        }
    }

    /** Greedy decoding of up to {@code maxNewTokens}, never stopping early. */
    public static GenerationConfig greedy(int maxNewTokens) {
        return new GenerationConfig(maxNewTokens, 0, 0, 1, 1, 0, -1);
    }

    /** Seeded sampling with temperature, top-k and top-p, never stopping early. */
    public static GenerationConfig sampling(int maxNewTokens, double temperature, int topK, double topP, long seed) {
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, 1, seed, -1);
    }

    public GenerationConfig withEosTokenId(long id) {
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, repetitionPenalty, seed, id);
    }

    public GenerationConfig withMaxNewTokens(int n) {
        return new GenerationConfig(n, temperature, topK, topP, repetitionPenalty, seed, eosTokenId);
    }

    public GenerationConfig withRepetitionPenalty(double p) {
        return new GenerationConfig(maxNewTokens, temperature, topK, topP, p, seed, eosTokenId);
    }

    /** True when tokens are drawn at random rather than taken by argmax. */
    public boolean sampling() {
        return temperature > 0;
    }
}
