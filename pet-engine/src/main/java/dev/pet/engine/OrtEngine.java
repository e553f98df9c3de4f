package dev.pet.engine;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtProvider;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.OrtSession.SessionOptions;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.FileData;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * The entry point to ONNX Runtime: holds the process-wide {@link OrtEnvironment}, turns {@link EngineOptions} into
 * session options and compiles models into sessions. Checks the device when created, so a missing CUDA provider is
 * reported before any model is built. Closing the engine closes every session it compiled that is still open.
 *
 * <p>Frozen weights that are regions of a file (a checkpoint) are shared by every CPU session of one engine: each
 * region is mapped once, wrapped once as an ORT tensor and handed to each session with
 * {@code SessionOptions.addInitializer}, which ORT uses as is (no copy, no mapping of its own). The protobuf still
 * refers to the file, so the model stays valid on its own. Without this, a train step and its evaluation graph
 * would each map the checkpoint and resident memory would count it twice (see {@link #sharedFileTensor}).
 */
public final class OrtEngine implements AutoCloseable {
    /** Numbers profiled sessions (see {@link EngineOptions#profileDirectory()}). */
    private static final java.util.concurrent.atomic.AtomicLong PROFILES = new java.util.concurrent.atomic.AtomicLong();
    private final EngineOptions options;
    private final OrtEnvironment env;
    private final Set<AutoCloseable> open = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Map<FileRegion, Shared> shared = new HashMap<>();
    private boolean closed;

    /** A typed region of a file: what makes two file-backed initializers the same bytes. */
    private record FileRegion(Path file, long offset, long length, DataType type, List<Long> shape) {
    }

    /** One shared ORT tensor and how many live sessions use it. */
    private static final class Shared {
        final OnnxTensor tensor;
        int users;

        Shared(OnnxTensor tensor) {
            this.tensor = tensor;
        }
    }

    public OrtEngine(EngineOptions options) {
        this.options = Objects.requireNonNull(options, "options");
        this.env = OrtEnvironment.getEnvironment();
        // Fail now, with the reason, rather than at the first compile.
        try (SessionOptions probe = newSessionOptions(false)) {
            Objects.requireNonNull(probe);
        }
    }

    /** An engine on the CPU with default options. */
    public static OrtEngine cpu() {
        return new OrtEngine(EngineOptions.defaults());
    }

    public EngineOptions options() {
        return options;
    }

    public OrtEnvironment environment() {
        return env;
    }

    /** The execution providers compiled into the ONNX Runtime library on the class path. */
    public static Set<OrtProvider> availableProviders() {
        EnumSet<OrtProvider> p = OrtEnvironment.getAvailableProviders();
        return Collections.unmodifiableSet(p);
    }

    /** Compiles a model into a reusable session; large initializers stay out of the protobuf (see SerializedModel). */
    public CompiledGraph compile(Model model) {
        return register(new CompiledGraph(this, model, false));
    }

    /**
     * Compiles a train-step style model into a session whose state (trainable tensors, optimizer state) lives in
     * engine-owned double buffers.
     *
     * @param initialState a value for every state input of {@code spec}
     */
    public StatefulSession compileStateful(Model model, StateSpec spec, Map<String, Tensor> initialState) {
        CompiledGraph graph = new CompiledGraph(this, model, options.plannedStepMemory());
        try {
            return register(new StatefulSession(graph, spec, initialState));
        } catch (RuntimeException e) {
            graph.close();
            throw e;
        }
    }

    private synchronized <T extends AutoCloseable> T register(T resource) {
        if (closed) {
            closeQuietly(resource);
            throw new EngineException("engine is closed");
        }
        open.add(resource);
        return resource;
    }

    synchronized void unregister(AutoCloseable resource) {
        open.remove(resource);
    }

    /**
     * Session options for this engine's device, threads and optimisation settings, with ORT's memory pattern when
     * {@code memoryPattern} (or the engine's option) says so. The caller closes them.
     */
    SessionOptions newSessionOptions(boolean memoryPattern) {
        SessionOptions so = new SessionOptions();
        try {
            so.setIntraOpNumThreads(options.intraOpThreads());
            so.setInterOpNumThreads(1);
            so.setExecutionMode(SessionOptions.ExecutionMode.SEQUENTIAL);
            so.setOptimizationLevel(switch (options.optimization()) {
                case NONE -> SessionOptions.OptLevel.NO_OPT;
                case BASIC -> SessionOptions.OptLevel.BASIC_OPT;
                case EXTENDED -> SessionOptions.OptLevel.EXTENDED_OPT;
                case ALL -> SessionOptions.OptLevel.ALL_OPT;
            });
            so.setMemoryPatternOptimization(options.memoryPattern() || memoryPattern);
            so.setCPUArenaAllocator(options.cpuArena());
            so.setDeterministicCompute(options.deterministic());
            if (options.device().kind() == Device.Kind.CUDA) {
                addCuda(so, options.device());
            }
            if (options.profileDirectory() != null) {
                // ORT names the file prefix_<time to the second>.json: a counter keeps sessions opened within one
                // second apart.
                java.nio.file.Files.createDirectories(options.profileDirectory());
                so.enableProfiling(options.profileDirectory().resolve("session-" + PROFILES.incrementAndGet())
                        .toString());
            }
            return so;
        } catch (OrtException | java.io.IOException e) {
            so.close();
            throw new EngineException("cannot configure an ONNX Runtime session for " + options + ": "
                    + e.getMessage(), e);
        } catch (RuntimeException e) {
            so.close();
            throw e;
        }
    }

    private static void addCuda(SessionOptions so, Device device) {
        Set<OrtProvider> providers = availableProviders();
        if (!providers.contains(OrtProvider.CUDA)) {
            throw new EngineException("device '" + device + "' needs ONNX Runtime's CUDA execution provider, but "
                    + "the ONNX Runtime library on the class path only has " + providerNames(providers)
                    + ". Use the com.microsoft.onnxruntime:onnxruntime_gpu artifact (build with "
                    + "-Donnxruntime.artifact=onnxruntime_gpu) on a machine with CUDA 12 and cuDNN 9, "
                    + "or set device: cpu");
        }
        try {
            so.addCUDA(device.index());
        } catch (OrtException | UnsatisfiedLinkError e) {
            throw new EngineException("device '" + device + "': ONNX Runtime's CUDA execution provider could not "
                    + "be loaded; it needs the CUDA 12 runtime and cuDNN 9 libraries on the library path "
                    + "(LD_LIBRARY_PATH) and a CUDA device with ordinal " + device.index() + ". Cause: "
                    + e.getMessage(), e);
        }
    }

    private static String providerNames(Set<OrtProvider> providers) {
        StringBuilder sb = new StringBuilder("[");
        for (OrtProvider p : providers) {
            sb.append(sb.length() > 1 ? ", " : "").append(p.getName());
        }
        return sb.append(']').toString();
    }

    /**
     * Whether a session with this many bytes of external initializers pre-packs its weights: below the limit, or
     * always when the graph computes with quantized weights ({@code quantized}: MatMulNBits nodes) and
     * {@link EngineOptions#prepackQuantized()} is on.
     */
    boolean prepacks(long externalBytes, boolean quantized) {
        return externalBytes <= options.prepackLimitBytes() || quantized && options.prepackQuantized();
    }

    /**
     * Whether a file-backed initializer of a session with {@code externalBytes} of external initializers (and
     * MatMulNBits nodes when {@code quantized}) is shared through one engine-wide ORT tensor: on the CPU (a CUDA
     * session copies weights to the device anyway), when the session does not pre-pack (pre-packing replaces the
     * weight by ORT's own packed copy), for element types ORT's Java API can wrap and regions one buffer can map (at
     * most 2 GiB; bigger ones ORT maps itself).
     */
    boolean sharesFileInitializer(Tensor t, long externalBytes, boolean quantized) {
        return options.device().kind() == Device.Kind.CPU && !prepacks(externalBytes, quantized)
                && t.data() instanceof FileData && !t.dataType().isPacked() && t.byteSize() > 0
                && t.byteSize() <= Integer.MAX_VALUE && switch (t.dataType()) {
                    case FLOAT, DOUBLE, INT8, UINT8, INT16, INT32, INT64, BOOL, FLOAT16, BFLOAT16 -> true;
                    default -> false;
                };
    }

    /**
     * The engine's one ORT tensor over a file-backed tensor's region (mapped read-only on first use), counted as used
     * by one more session; {@link #releaseSharedFileTensor} gives it back. The last release closes it.
     */
    synchronized OnnxTensor sharedFileTensor(Tensor t) {
        if (closed) {
            throw new EngineException("engine is closed");
        }
        Shared s = shared.computeIfAbsent(region(t), r -> new Shared(OrtTensors.wrap(env, t)));
        s.users++;
        return s.tensor;
    }

    /** One session no longer uses the shared tensor of {@code t}'s region. */
    synchronized void releaseSharedFileTensor(Tensor t) {
        FileRegion r = region(t);
        Shared s = shared.get(r);
        if (s != null && --s.users == 0) {
            shared.remove(r);
            s.tensor.close();
        }
    }

    /** How many file regions are currently shared (for tests). */
    synchronized int sharedFileTensorCount() {
        return shared.size();
    }

    private static FileRegion region(Tensor t) {
        FileData fd = (FileData) t.data();
        List<Long> shape = new java.util.ArrayList<>();
        for (long d : t.shape()) {
            shape.add(d);
        }
        return new FileRegion(fd.file().toAbsolutePath().normalize(), fd.offset(), fd.byteSize(), t.dataType(),
                List.copyOf(shape));
    }

    /**
     * Creates a session from a serialised model with its in-memory external initializers and the folder of its
     * file-backed ones (null if none), with ORT's memory pattern when {@code memoryPattern}; wraps ORT's failures.
     */
    OrtSession createSession(byte[] bytes, Map<String, ? extends ai.onnxruntime.OnnxTensorLike> external,
            Map<String, OnnxTensor> sharedInitializers, java.nio.file.Path dataFolder, long externalBytes,
            boolean quantized, boolean memoryPattern, String what) {
        try (SessionOptions so = newSessionOptions(memoryPattern)) {
            if (!prepacks(externalBytes, quantized)) {
                so.addConfigEntry("session.disable_prepacking", "1");
            }
            if (dataFolder != null) {
                so.addConfigEntry(SerializedModel.FOLDER_OPTION, dataFolder.toString());
            }
            if (!external.isEmpty()) {
                so.addExternalInitializers(Map.copyOf(external));
            }
            for (Map.Entry<String, OnnxTensor> e : sharedInitializers.entrySet()) {
                so.addInitializer(e.getKey(), e.getValue());
            }
            return env.createSession(bytes, so);
        } catch (OrtException e) {
            throw new EngineException("ONNX Runtime rejected " + what + ": " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        AutoCloseable[] toClose;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            toClose = open.toArray(new AutoCloseable[0]);
            open.clear();
        }
        for (AutoCloseable c : toClose) {
            closeQuietly(c);
        }
        synchronized (this) {
            shared.values().forEach(s -> s.tensor.close());
            shared.clear();
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception ignored) {
            // Closing native handles only fails if already closed.
        }
    }
}
