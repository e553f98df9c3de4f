package dev.pet.engine;

import java.nio.file.Path;
import java.util.Objects;

/**
 * How ONNX Runtime sessions are configured.
 *
 * @param device                     where graphs run
 * @param intraOpThreads             threads inside one operator (≥ 1); defaults to the available processors
 * @param optimization               graph optimisation level
 * @param memoryPattern              whether every session plans activation memory from the first run's shapes
 *                                   into one block per run; off by default: the planned block is allocated beside
 *                                   the arena blocks of the first run, which stay cached, so activation memory is
 *                                   held twice (+1.0 GiB peak RSS at GPT-2 small; measured in docs/BENCHMARKS.md).
 *                                   Train steps release those blocks instead ({@code plannedStepMemory})
 * @param cpuArena                   whether the CPU arena allocator caches freed blocks between runs
 * @param plannedStepMemory          whether train steps ({@link StatefulSession}) plan their activation memory:
 *                                   their session runs with ORT's memory pattern (from the second run at the same
 *                                   input shapes, one block laid out by ORT's planner instead of tensor-by-tensor
 *                                   arena allocations), and the arena regions the first run at new shapes grew are
 *                                   handed back after it (run option {@code memory.enable_memory_arena_shrinkage}),
 *                                   so the planned block does not sit beside them. Without it, the second step found
 *                                   the first step's regions cut up differently and grew more (GPT-2 large: peak RSS
 *                                   6.3 GiB against 5.55 GiB planned, and the planned step was faster, 6.4 s
 *                                   against 7.3 s; docs/BENCHMARKS.md, "Memory and scale"). On by default (the
 *                                   runtime turns it off with per-block recomputation, where it raised a 4-bit
 *                                   GPT-2-XL's peak); needs the CPU arena. Other sessions (evaluation, generation, whose shapes change with
 *                                   every token) keep {@code memoryPattern}
 * @param deterministic              whether ORT must choose deterministic kernels (matters for CUDA; CPU kernels
 *                                   already are at a fixed thread count)
 * @param externalThresholdBytes     initializers of at least this many bytes are kept out of the serialised
 *                                   model and handed to ORT as external initializers
 * @param prepackLimitBytes          sessions whose external initializers total more than this run without ORT's
 *                                   weight pre-packing ({@code session.disable_prepacking}): pre-packing keeps a
 *                                   second, packed copy of every constant MatMul/Gemm weight and takes seconds
 *                                   of session creation, for no speed measurable at GPT-2 small on 2 cores, so
 *                                   the default is 0 (never; measured in docs/BENCHMARKS.md)
 * @param prepackQuantized           whether sessions of graphs with ONNX Runtime's {@code MatMulNBits} (quantized
 *                                   frozen weights) pre-pack whatever their size (default true): MatMulNBits
 *                                   computes from its packed weight only; unpacked, it dequantizes the whole weight
 *                                   to float32 on every call and multiplies in float32, so {@code compute: int8}
 *                                   would never run its int8 kernel (measured in docs/BENCHMARKS.md, "Quantized
 *                                   frozen base")
 * @param profileDirectory           when not null, every session writes ONNX Runtime's profile (one JSON file of
 *                                   kernel timings per session, written when it closes) into this folder; for
 *                                   benchmarks, off by default (profiling slows every run)
 */
public record EngineOptions(Device device, int intraOpThreads, Optimization optimization, boolean memoryPattern,
        boolean cpuArena, boolean plannedStepMemory, boolean deterministic, long externalThresholdBytes,
        long prepackLimitBytes, boolean prepackQuantized, Path profileDirectory) {

    /** ONNX Runtime graph optimisation levels. */
    public enum Optimization { NONE, BASIC, EXTENDED, ALL }

    /** Initializers from 1 KiB up go outside the protobuf: small constants stay inline, weights never do. */
    public static final long DEFAULT_EXTERNAL_THRESHOLD = 1024;

    /**
     * No pre-packing by default: at GPT-2 small it cost 3.4 s of session creation and 0.44 GiB of peak RSS for no
     * measurable step-time gain on a quiet machine (docs/BENCHMARKS.md, "Time to first step").
     */
    public static final long DEFAULT_PREPACK_LIMIT = 0;

    public EngineOptions {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(optimization, "optimization");
        if (intraOpThreads < 1) {
            throw new EngineException("intra-op threads must be at least 1, found " + intraOpThreads);
        }
        if (prepackLimitBytes < 0) {
            throw new EngineException("pre-packing limit must be >= 0, found " + prepackLimitBytes);
        }
        if (externalThresholdBytes < 0) {
            throw new EngineException("external initializer threshold must be >= 0, found "
                    + externalThresholdBytes);
        }
    }

    /**
     * CPU, one intra-op thread per available processor, all optimisations, arena on, memory pattern off except
     * for planned train steps.
     */
    public static EngineOptions defaults() {
        return new EngineOptions(Device.CPU, Runtime.getRuntime().availableProcessors(), Optimization.ALL, false,
                true, true, true, DEFAULT_EXTERNAL_THRESHOLD, DEFAULT_PREPACK_LIMIT, true, null);
    }

    public EngineOptions withDevice(Device d) {
        return new EngineOptions(d, intraOpThreads, optimization, memoryPattern, cpuArena, plannedStepMemory,
                deterministic, externalThresholdBytes, prepackLimitBytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withIntraOpThreads(int n) {
        return new EngineOptions(device, n, optimization, memoryPattern, cpuArena, plannedStepMemory, deterministic,
                externalThresholdBytes, prepackLimitBytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withOptimization(Optimization o) {
        return new EngineOptions(device, intraOpThreads, o, memoryPattern, cpuArena, plannedStepMemory, deterministic,
                externalThresholdBytes, prepackLimitBytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withMemoryPattern(boolean on) {
        return new EngineOptions(device, intraOpThreads, optimization, on, cpuArena, plannedStepMemory, deterministic,
                externalThresholdBytes, prepackLimitBytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withCpuArena(boolean on) {
        return new EngineOptions(device, intraOpThreads, optimization, memoryPattern, on, plannedStepMemory,
                deterministic, externalThresholdBytes, prepackLimitBytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withPlannedStepMemory(boolean on) {
        return new EngineOptions(device, intraOpThreads, optimization, memoryPattern, cpuArena, on, deterministic,
                externalThresholdBytes, prepackLimitBytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withDeterministic(boolean on) {
        return new EngineOptions(device, intraOpThreads, optimization, memoryPattern, cpuArena, plannedStepMemory, on,
                externalThresholdBytes, prepackLimitBytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withExternalThresholdBytes(long bytes) {
        return new EngineOptions(device, intraOpThreads, optimization, memoryPattern, cpuArena, plannedStepMemory,
                deterministic, bytes, prepackLimitBytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withPrepackLimitBytes(long bytes) {
        return new EngineOptions(device, intraOpThreads, optimization, memoryPattern, cpuArena, plannedStepMemory,
                deterministic, externalThresholdBytes, bytes, prepackQuantized, profileDirectory);
    }

    public EngineOptions withPrepackQuantized(boolean on) {
        return new EngineOptions(device, intraOpThreads, optimization, memoryPattern, cpuArena, plannedStepMemory,
                deterministic, externalThresholdBytes, prepackLimitBytes, on, profileDirectory);
    }

    /** Profiles every session into {@code directory} (null: no profiling). */
    public EngineOptions withProfileDirectory(Path directory) {
        return new EngineOptions(device, intraOpThreads, optimization, memoryPattern, cpuArena, plannedStepMemory,
                deterministic, externalThresholdBytes, prepackLimitBytes, prepackQuantized, directory);
    }
}
