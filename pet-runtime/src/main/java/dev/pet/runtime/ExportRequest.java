package dev.pet.runtime;

import dev.pet.runtime.config.RunConfig;

import java.nio.file.Path;
import java.util.Objects;

/**
 * Export of a fine-tuned run: the run config, the adapter or checkpoint directory to export (null: the run's
 * {@code output_dir/adapter}), the format, the output path, whether an existing output may be replaced
 * ({@code --force}), and whether a merged model is quantized again with the run's quantization settings
 * ({@code --quantize}; merged-onnx only).
 */
public record ExportRequest(RunConfig config, Path source, Format format, Path output, boolean force,
        boolean quantize) {
    /** Export formats. */
    public enum Format {
        /** One ONNX model with the adapter merged into the base weights. */
        MERGED_ONNX("merged-onnx"),
        /** The adapter alone in Hugging Face PEFT layout. */
        PEFT("peft"),
        /** An ONNX Runtime {@code .onnx_adapter} plus a base model taking the LoRA weights as inputs. */
        ORT_ADAPTER("ort-adapter");

        private final String cliName;

        Format(String cliName) {
            this.cliName = cliName;
        }

        public String cliName() {
            return cliName;
        }

        public static Format parse(String s) {
            for (Format f : values()) {
                if (f.cliName.equalsIgnoreCase(s)) {
                    return f;
                }
            }
            throw new IllegalArgumentException("unknown export format '" + s + "'; valid: merged-onnx, peft, ort-adapter");
        }
    }

    public ExportRequest {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(output, "output");
        if (quantize && format != Format.MERGED_ONNX) {
            throw new IllegalArgumentException("--quantize applies to merged-onnx exports, not " + format.cliName());
        }
    }

    /** An export as trained: a merged model keeps float weights. */
    public ExportRequest(RunConfig config, Path source, Format format, Path output, boolean force) {
        this(config, source, format, output, force, false);
    }
}
