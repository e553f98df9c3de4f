package dev.pet.onnx.quant;

import dev.pet.onnx.OnnxException;
import java.util.List;
import java.util.Locale;
import java.util.Objects;

/**
 * How frozen linear weights are quantized: {@code bits} per value (4 or 8), one scale (and, when asymmetric, one
 * zero point) per {@code blockSize} consecutive values along the input dimension K, the arithmetic of the product
 * and the operators that compute it.
 *
 * @param bits      4 or 8
 * @param blockSize 32, 64 or 128 values per scale (kernel {@code matmul_integer} has one scale per output channel
 *                  instead and does not read it)
 * @param symmetric true: scale = max|w|/(2^(bits-1)-1), no zero points; false: scale and zero point from the
 *                  block's [min(w,0), max(w,0)] range
 * @param compute   the product's arithmetic
 * @param kernel    the operators that multiply by the quantized weight
 */
public record QuantSpec(int bits, int blockSize, boolean symmetric, Compute compute, Kernel kernel) {
    /** Block sizes offered; MatMulNBits needs a power of two of at least 16, these are the ones measured. */
    public static final List<Integer> BLOCK_SIZES = List.of(32, 64, 128);

    /** The arithmetic of the quantized product. */
    public enum Compute {
        /** Activations stay float32 (MatMulNBits {@code accuracy_level} 1). */
        FP32(1),
        /** Activations are quantized to int8 per block and multiplied with integer dot products (VNNI). */
        INT8(4);

        private final int accuracyLevel;

        Compute(int accuracyLevel) {
            this.accuracyLevel = accuracyLevel;
        }

        /** MatMulNBits' {@code accuracy_level} attribute. */
        public int accuracyLevel() {
            return accuracyLevel;
        }

        /** Parses {@code fp32} or {@code int8} (any case). */
        public static Compute parse(String s) {
            for (Compute c : values()) {
                if (c.name().equalsIgnoreCase(s)) {
                    return c;
                }
            }
            throw new Invalid("compute", "must be fp32 or int8, found '" + s + "'");
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The operators that multiply by a quantized weight. */
    public enum Kernel {
        /**
         * ONNX Runtime's contrib op {@code com.microsoft.MatMulNBits}: fused dequantize-and-multiply, int8 compute
         * possible; it multiplies only by {@code Wᵀ}, so training keeps a second copy quantized along the other axis
         * for {@code dX = dY · W}. Runs on ONNX Runtime only.
         */
        MATMUL_NBITS("matmul_nbits"),
        /**
         * Standard ONNX (opset 21): {@code DequantizeLinear} with {@code block_size} into a float Gemm. One stored
         * copy serves forward and backward (the backward dequantizes it again and multiplies the other way);
         * float32 compute only.
         */
        DEQUANTIZE("dequantize"),
        /**
         * ONNX Runtime's {@code com.microsoft.MatMulIntegerToFloat}: int8 codes with one scale per output channel
         * (not per block), activations quantized to int8 per row at run time, products on the int8 GEMM (VNNI).
         * The backward pass multiplies by the same codes transposed, so forward and backward use one Ŵ. 8 bits,
         * symmetric and int8 compute only. Runs on ONNX Runtime only.
         */
        MATMUL_INTEGER("matmul_integer");

        private final String configName;

        Kernel(String configName) {
            this.configName = configName;
        }

        /** Parses {@code matmul_nbits}, {@code dequantize} or {@code matmul_integer} (any case). */
        public static Kernel parse(String s) {
            for (Kernel k : values()) {
                if (k.configName.equalsIgnoreCase(s)) {
                    return k;
                }
            }
            throw new Invalid("kernel", "must be matmul_nbits, dequantize or matmul_integer, found '" + s + "'");
        }

        @Override
        public String toString() {
            return configName;
        }
    }

    /** A setting out of range; {@link #key()} names it as the config spells it. */
    public static final class Invalid extends OnnxException {
        private final String key;
        private final String problem;

        public Invalid(String key, String problem) {
            super("quantization." + key + " " + problem);
            this.key = key;
            this.problem = problem;
        }

        public String key() {
            return key;
        }

        public String problem() {
            return problem;
        }
    }

    public QuantSpec {
        Objects.requireNonNull(compute, "compute");
        Objects.requireNonNull(kernel, "kernel");
        if (bits != 4 && bits != 8) {
            throw new Invalid("bits", "must be 4 or 8, found " + bits);
        }
        if (!BLOCK_SIZES.contains(blockSize)) {
            throw new Invalid("block_size", "must be one of " + BLOCK_SIZES + ", found " + blockSize);
        }
        if (kernel == Kernel.DEQUANTIZE && compute == Compute.INT8) {
            throw new Invalid("compute", "int8 needs kernel matmul_nbits: kernel dequantize multiplies in float32"
                    + " (set compute: fp32, or kernel: matmul_nbits)");
        }
        if (kernel == Kernel.MATMUL_INTEGER) {
            if (bits != 8) {
                throw new Invalid("bits", "must be 8 with kernel matmul_integer (ONNX Runtime's int8 GEMM), found "
                        + bits + " (4 bits needs kernel matmul_nbits)");
            }
            if (!symmetric) {
                throw new Invalid("symmetric", "must be true with kernel matmul_integer: its per-channel int8 codes"
                        + " have no zero points");
            }
            if (compute != Compute.INT8) {
                throw new Invalid("compute", "must be int8 with kernel matmul_integer, which multiplies in int8"
                        + " (set compute: int8, or kernel: matmul_nbits)");
            }
        }
    }

    /** The same settings with another kernel. */
    public QuantSpec withKernel(Kernel k) {
        return new QuantSpec(bits, blockSize, symmetric, compute, k);
    }

    /** 4-bit, blocks of 64, symmetric, int8 compute on MatMulNBits: QLoRA's usual setting on a CPU with VNNI. */
    public static QuantSpec defaults() {
        return new QuantSpec(4, 64, true, Compute.INT8, Kernel.MATMUL_NBITS);
    }

    /** The zero point used when none is stored (symmetric): the middle code, as MatMulNBits assumes. */
    public int defaultZeroPoint() {
        return 1 << (bits - 1);
    }

    /** The largest code. */
    public int maxCode() {
        return (1 << bits) - 1;
    }

    /** Bytes holding one block of codes. */
    public int blobBytes() {
        return blockSize * bits / 8;
    }

    /** True when one scale covers a whole output channel (kernel matmul_integer) rather than a block. */
    public boolean perChannel() {
        return kernel == Kernel.MATMUL_INTEGER;
    }

    /**
     * One line for run records and reports: {@code bits=4 block_size=64 symmetric=true compute=int8
     * kernel=matmul_nbits}.
     */
    public String describe() {
        return "bits=" + bits + " block_size=" + (perChannel() ? "channel" : blockSize) + " symmetric=" + symmetric
                + " compute=" + compute + " kernel=" + kernel;
    }
}
