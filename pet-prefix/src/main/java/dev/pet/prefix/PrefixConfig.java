package dev.pet.prefix;

import dev.pet.api.PetConfig;
import dev.pet.api.PetConfigs;
import dev.pet.api.PetException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Prefix-tuning options (PEFT names and MindFormers/MindPet names).
 *
 * @param petType           {@code prefix_tuning} or {@code p_tuning_v2}
 * @param numVirtualTokens  prefix length P ({@code num_virtual_tokens}, {@code prefix_token_num}, {@code pre_seq_len})
 * @param prefixProjection  embedding → Linear → Tanh → Linear reparameterisation instead of direct prefixes
 * @param encoderHiddenSize hidden width of that projection ({@code encoder_hidden_size}, {@code mid_dim})
 * @param seed              initialisation seed
 */
public record PrefixConfig(String petType, int numVirtualTokens, boolean prefixProjection, int encoderHiddenSize,
        long seed) implements PetConfig {
    static final Map<String, String> KEYS = new LinkedHashMap<>();

    static {
        KEYS.put("num_virtual_tokens", "p");
        KEYS.put("prefix_token_num", "p");
        KEYS.put("pre_seq_len", "p");
        KEYS.put("prefix_projection", "projection");
        KEYS.put("encoder_hidden_size", "mid");
        KEYS.put("mid_dim", "mid");
        KEYS.put("seed", "seed");
        KEYS.put("task_type", "task_type");
    }

    public PrefixConfig {
        if (numVirtualTokens < 1) {
            throw new PetException(petType + ": num_virtual_tokens must be >= 1, found " + numVirtualTokens);
        }
        if (prefixProjection && encoderHiddenSize < 1) {
            throw new PetException(petType + ": encoder_hidden_size must be >= 1, found " + encoderHiddenSize);
        }
    }

    @Override
    public int reservedPositions() {
        return numVirtualTokens;
    }

    static PrefixConfig parse(String petType, Map<String, Object> raw, boolean projectionAllowed) {
        Map<String, Object> v = PetConfigs.canonical(petType, raw, KEYS);
        boolean projection = PetConfigs.bool(petType, v, "projection", false);
        if (projection && !projectionAllowed) {
            throw new PetException(petType + ": P-tuning v2 uses direct prefixes; prefix_projection is only for "
                    + "prefix_tuning");
        }
        return new PrefixConfig(petType, PetConfigs.integer(petType, v, "p", 20), projection,
                PetConfigs.integer(petType, v, "mid", 512), PetConfigs.integer(petType, v, "seed", 42));
    }
}
