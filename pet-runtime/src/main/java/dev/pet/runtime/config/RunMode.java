package dev.pet.runtime.config;

import java.util.Locale;

/** What a run does, as MindFormers' {@code run_mode} names it. */
public enum RunMode {
    TRAIN, FINETUNE, EVAL, PREDICT;

    /** The YAML spelling ({@code finetune}). */
    public String yamlName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
