package dev.pet.engine;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxTensorLike;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.quant.IntegerLinears;
import dev.pet.onnx.quant.QuantizedLinears;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * One ONNX Runtime session for one graph, created once and reused for every call. Initializers at or above the
 * engine's threshold are kept out of the serialised model and supplied to ORT as external initializers, so frozen
 * weights stay constants of the session, never cross JNI per call, and no protobuf above 2 GiB is built. Weights
 * that are regions of checkpoint files are read by ORT from those files (see {@link SerializedModel}), so their pages
 * never become resident in this process beside ORT's copy; the others are copied by ORT 1.29 into its own memory
 * once, at session creation, and their wrapped buffers are kept until the graph is closed. Not thread-safe.
 */
public final class CompiledGraph implements AutoCloseable {
    private final OrtEngine engine;
    private final String name;
    private final OrtSession session;
    private final List<OnnxTensor> externalTensors;
    /** The file-backed tensors whose engine-wide ORT tensors this session uses (released on close). */
    private final List<Tensor> sharedSources;
    private final Set<String> externalNames;
    private final long serializedBytes;
    private final Map<String, TensorInfo> inputs;
    private final Map<String, TensorInfo> outputs;
    private boolean closed;

    /** With {@code memoryPattern}, the session plans its activation memory (see {@link EngineOptions}). */
    CompiledGraph(OrtEngine engine, Model graphModel, boolean memoryPattern) {
        this.engine = Objects.requireNonNull(engine, "engine");
        Model model = IntegerLinears.forThisCpu(Objects.requireNonNull(graphModel, "model"));
        this.name = model.graph().name().isEmpty() ? "graph" : model.graph().name();
        SerializedModel serialized = SerializedModel.of(model, engine.options().externalThresholdBytes());
        this.serializedBytes = serialized.bytes().length;
        Map<String, OnnxTensor> external = new LinkedHashMap<>();
        Map<String, OnnxTensor> sharedTensors = new LinkedHashMap<>();
        List<Tensor> sharedSources = new ArrayList<>();
        OrtSession s = null;
        try {
            for (Map.Entry<String, Tensor> e : serialized.inMemory().entrySet()) {
                external.put(e.getKey(), OrtTensors.wrap(engine.environment(), e.getValue()));
            }
            long externalBytes = serialized.external().values().stream().mapToLong(Tensor::byteSize).sum();
            boolean quantized = multipliesQuantizedWeights(model);
            // File-backed weights: one engine-wide tensor per file region, so every session of the engine (train
            // step, evaluation, ...) reads the same mapping; ORT reads the others from the file itself.
            for (String n : serialized.fromFiles()) {
                Tensor t = serialized.external().get(n);
                if (engine.sharesFileInitializer(t, externalBytes, quantized)) {
                    sharedSources.add(t);
                    sharedTensors.put(n, engine.sharedFileTensor(t));
                }
            }
            s = engine.createSession(serialized.bytes(), external, sharedTensors, serialized.dataFolder(),
                    externalBytes, quantized, memoryPattern, "graph '" + name + "'");
            this.inputs = tensorInfos(s.getInputInfo(), "input");
            this.outputs = tensorInfos(s.getOutputInfo(), "output");
        } catch (OrtException | RuntimeException e) {
            external.values().forEach(OnnxTensor::close);
            if (s != null) {
                closeSession(s);
            }
            sharedSources.forEach(engine::releaseSharedFileTensor);
            if (e instanceof RuntimeException re) {
                throw re;
            }
            throw new EngineException("cannot read the signature of graph '" + name + "': " + e.getMessage(), e);
        }
        this.session = s;
        this.externalTensors = List.copyOf(external.values());
        this.sharedSources = List.copyOf(sharedSources);
        this.externalNames = Collections.unmodifiableSet(new LinkedHashSet<>(serialized.external().keySet()));
    }

    /**
     * True when the graph multiplies by quantized weights with ONNX Runtime's MatMulNBits or int8 GEMM (kernel
     * matmul_integer): their fast kernels run only from weights pre-packed at session creation.
     */
    static boolean multipliesQuantizedWeights(Model model) {
        return model.graph().nodes().stream().anyMatch(n -> n.domain().equals(QuantizedLinears.DOMAIN)
                && n.opType().equals(QuantizedLinears.OP) || IntegerLinears.isProduct(n));
    }

    private Map<String, TensorInfo> tensorInfos(Map<String, NodeInfo> infos, String kind) {
        Map<String, TensorInfo> out = new LinkedHashMap<>();
        for (Map.Entry<String, NodeInfo> e : infos.entrySet()) {
            if (!(e.getValue().getInfo() instanceof TensorInfo ti)) {
                throw new EngineException("graph '" + name + "' " + kind + " '" + e.getKey()
                        + "' is not a tensor (" + e.getValue().getInfo() + ")");
            }
            out.put(e.getKey(), ti);
        }
        return Collections.unmodifiableMap(out);
    }

    /** The graph's name (or "graph"), used in messages. */
    public String name() {
        return name;
    }

    /** Graph input names in declaration order. */
    public List<String> inputNames() {
        return List.copyOf(inputs.keySet());
    }

    /** Graph output names in declaration order. */
    public List<String> outputNames() {
        return List.copyOf(outputs.keySet());
    }

    /** ORT's view of an input: element type and shape (-1 for a dynamic dimension). */
    public TensorInfo inputInfo(String input) {
        TensorInfo ti = inputs.get(input);
        if (ti == null) {
            throw new EngineException("graph '" + name + "' has no input '" + input + "'; inputs are "
                    + inputs.keySet());
        }
        return ti;
    }

    /** ORT's view of an output. */
    public TensorInfo outputInfo(String output) {
        TensorInfo ti = outputs.get(output);
        if (ti == null) {
            throw new EngineException("graph '" + name + "' has no output '" + output + "'; outputs are "
                    + outputs.keySet());
        }
        return ti;
    }

    /** Size of the protobuf handed to ORT, without the external initializers. */
    public long serializedBytes() {
        return serializedBytes;
    }

    /** Names of the initializers supplied to ORT outside the protobuf. */
    public Set<String> externalInitializers() {
        return externalNames;
    }

    /** Runs the graph and returns every output as a heap tensor. */
    public Map<String, Tensor> run(Map<String, Tensor> feeds) {
        return run(feeds, outputs.keySet());
    }

    /** Runs the graph and returns the requested outputs as heap tensors. */
    public Map<String, Tensor> run(Map<String, Tensor> feeds, Set<String> requested) {
        return run(feeds, requested, null);
    }

    /**
     * Runs the graph with an ONNX Runtime adapter active (its tensors override the graph inputs of the same names)
     * and returns every output as a heap tensor.
     */
    public Map<String, Tensor> run(Map<String, Tensor> feeds, OrtAdapter adapter) {
        Objects.requireNonNull(adapter, "adapter");
        try (OrtSession.RunOptions options = adapter.runOptions()) {
            return run(feeds, outputs.keySet(), options);
        }
    }

    private Map<String, Tensor> run(Map<String, Tensor> feeds, Set<String> requested, OrtSession.RunOptions options) {
        Objects.requireNonNull(feeds, "feeds");
        Objects.requireNonNull(requested, "requested");
        checkOpen();
        checkFeeds(feeds.keySet(), Set.of());
        requested.forEach(this::outputInfo);
        Map<String, OnnxTensor> wrapped = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, Tensor> e : feeds.entrySet()) {
                checkType(e.getKey(), e.getValue());
                wrapped.put(e.getKey(), OrtTensors.wrap(engine.environment(), e.getValue()));
            }
            try (OrtSession.Result r = options == null ? session.run(wrapped, requested)
                    : session.run(wrapped, requested, options)) {
                Map<String, Tensor> out = new LinkedHashMap<>();
                for (Map.Entry<String, OnnxValue> e : r) {
                    out.put(e.getKey(), OrtTensors.toTensor((OnnxTensor) e.getValue()));
                }
                return out;
            }
        } catch (OrtException e) {
            throw new EngineException("running graph '" + name + "' failed: " + e.getMessage(), e);
        } finally {
            wrapped.values().forEach(OnnxTensor::close);
        }
    }

    /**
     * Low-level run on ORT values: inputs as given (no copies), {@code requested} outputs returned in the result,
     * {@code pinned} outputs written into the caller's tensors. The caller closes the result (which leaves pinned
     * tensors open).
     */
    public OrtSession.Result runOrt(Map<String, ? extends OnnxTensorLike> inputs, Set<String> requested,
            Map<String, ? extends OnnxValue> pinned) {
        checkOpen();
        checkFeeds(inputs.keySet(), Set.of());
        try {
            return session.run(inputs, requested, pinned);
        } catch (OrtException e) {
            throw new EngineException("running graph '" + name + "' failed: " + e.getMessage(), e);
        }
    }

    /** Checks that {@code fed} plus {@code alsoFed} is exactly the graph's input set. */
    void checkFeeds(Set<String> fed, Set<String> alsoFed) {
        List<String> unknown = new ArrayList<>();
        for (String f : fed) {
            if (!inputs.containsKey(f)) {
                unknown.add(f);
            }
        }
        if (!unknown.isEmpty()) {
            throw new EngineException("graph '" + name + "' has no input(s) " + unknown + "; inputs are "
                    + inputs.keySet());
        }
        List<String> missing = new ArrayList<>();
        for (String in : inputs.keySet()) {
            if (!fed.contains(in) && !alsoFed.contains(in)) {
                missing.add(in);
            }
        }
        if (!missing.isEmpty()) {
            throw new EngineException("graph '" + name + "' needs input(s) " + missing + " that were not fed");
        }
    }

    /** Checks a feed's element type and static dimensions against the graph input. */
    void checkType(String input, Tensor t) {
        TensorInfo ti = inputInfo(input);
        if (OrtTensors.dataType(ti.onnxType) != t.dataType()) {
            throw new EngineException("graph '" + name + "' input '" + input + "' expects "
                    + OrtTensors.dataType(ti.onnxType) + ", found " + t.dataType());
        }
        long[] want = ti.getShape();
        long[] got = t.shape();
        boolean ok = want.length == got.length;
        for (int i = 0; ok && i < want.length; i++) {
            ok = want[i] < 0 || want[i] == got[i];
        }
        if (!ok) {
            throw new EngineException("graph '" + name + "' input '" + input + "' expects shape "
                    + java.util.Arrays.toString(want) + " (-1 = any), found " + java.util.Arrays.toString(got));
        }
    }

    OrtSession session() {
        checkOpen();
        return session;
    }

    OrtEngine engine() {
        return engine;
    }

    private void checkOpen() {
        if (closed) {
            throw new EngineException("graph '" + name + "' is closed");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeSession(session);
        externalTensors.forEach(OnnxTensor::close);
        sharedSources.forEach(engine::releaseSharedFileTensor);
        engine.unregister(this);
    }

    private static void closeSession(OrtSession s) {
        try {
            s.close();
        } catch (OrtException e) {
            throw new EngineException("closing an ONNX Runtime session failed: " + e.getMessage(), e);
        }
    }
}
