package dev.pet.prefix;

import java.util.Set;

/** P-tuning v2: prefix tuning with direct (unprojected) prefixes in every layer. */
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

    @Override
    protected String peftType() {
        return "P_TUNING_V2";
    }
}
