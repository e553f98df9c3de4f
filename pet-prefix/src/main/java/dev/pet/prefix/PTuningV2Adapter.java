package dev.pet.prefix;

import java.util.Set;

/**
 * P-tuning v2: prefix tuning with direct (unprojected) prefixes in every layer. PEFT has no separate type for it, so
 * its adapters are PEFT {@code PREFIX_TUNING} adapters with {@code prefix_projection: false}.
 */
public final class PTuningV2Adapter extends PrefixTuningAdapter {
    @Override
    public String type() {
        return "p_tuning_v2";
    }

    @Override
    public Set<String> aliases() {
        return Set.of("ptuning2", "ptuningv2");
    }

    @Override
    protected boolean projectionAllowed() {
        return false;
    }
}
