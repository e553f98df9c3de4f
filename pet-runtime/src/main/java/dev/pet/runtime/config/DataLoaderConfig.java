package dev.pet.runtime.config;

import java.nio.file.Path;
import java.util.Objects;

/** {@code *_dataset.data_loader}: the corpus format, where it is (a file or a directory), and whether to shuffle. */
public record DataLoaderConfig(Type type, Path datasetDir, boolean shuffle) {
    /** Corpus formats. */
    public enum Type {
        /** Raw wikitext-2/103 text, cleaned as MindFormers does, split into articles at top-level headings. */
        WIKITEXT,
        /** Plain {@code .txt} files, one document each. */
        TEXT,
        /** JSON lines with {@code text}, or {@code prompt} + {@code completion} (loss on the completion only). */
        JSONL,
        /** Pre-tokenized ids: nanoGPT-style uint16 {@code .bin}, or 1-D int32/int64 {@code .npy}. */
        TOKENS;

        public String yamlName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    public DataLoaderConfig {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(datasetDir, "datasetDir");
    }
}
