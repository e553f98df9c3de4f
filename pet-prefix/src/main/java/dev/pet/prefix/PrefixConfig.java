package dev.pet.prefix;

import dev.pet.api.PetConfig;
import dev.pet.api.PetConfigs;
import dev.pet.api.PetConfigException;
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
        KEYS.put("num_virtual_tokens", "num_virtual_tokens");
        KEYS.put("prefix_token_num", "num_virtual_tokens");
        KEYS.put("pre_seq_len", "num_virtual_tokens");
        KEYS.put("prefix_projection", "prefix_projection");
        KEYS.put("encoder_hidden_size", "encoder_hidden_size");
        KEYS.put("mid_dim", "encoder_hidden_size");
        KEYS.put("seed", "seed");
        KEYS.put("task_type", "task_type");
    }

    public PrefixConfig {
        if (numVirtualTokens < 1) {
            throw new PetConfigException(petType, "num_virtual_tokens", "must be >= 1, found " + numVirtualTokens);
        }
        if (prefixProjection && encoderHiddenSize < 1) {
            throw new PetConfigException(petType, "encoder_hidden_size", "must be >= 1, found "
                    + encoderHiddenSize);
        }
    }

    @Override
    public int reservedPositions() {
        return numVirtualTokens;
    }

    static PrefixConfig parse(String petType, Map<String, Object> raw, boolean projectionAllowed) {
        PetConfigs v = PetConfigs.bind(petType, raw, KEYS);
        boolean projection = v.bool("prefix_projection", false);
        if (projection && !projectionAllowed) {
            throw v.error("prefix_projection", "is only for prefix_tuning: P-tuning v2 uses direct prefixes");
        }
        int p = v.integer("num_virtual_tokens", 20);
        int mid = v.integer("encoder_hidden_size", 512);
        long seed = v.longValue("seed", 42);
        return v.build(() -> new PrefixConfig(petType, p, projection, mid, seed));
    }
}
