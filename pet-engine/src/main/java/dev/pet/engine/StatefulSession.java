package dev.pet.engine;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Runs a step graph repeatedly while carrying state (trainable tensors, optimizer moments) between steps.
 *
 * <p>Each state tensor has two engine-owned direct buffers, A and B, each wrapped once as an {@link OnnxTensor}.
 * A step feeds the current buffers as inputs and has ORT write the new values straight into the other set through
 * pinned outputs; then the roles swap (A→B, then B→A). A step therefore allocates no state-sized memory and state
 * never crosses JNI as Java arrays. Feeds are written into reusable direct buffers that are reallocated only when a
 * feed's shape changes. Outputs that are not state are returned as small heap tensors.
 *
 * <p>If a step fails, the current state is unchanged (ORT may have written part of the other buffer set, which the
 * next step overwrites). Not thread-safe.
 */
public final class StatefulSession implements AutoCloseable {
    private final CompiledGraph graph;
    private final OrtEnvironment env;
    private final Map<String, StateSlot> state = new LinkedHashMap<>();
    private final Map<String, FeedSlot> feeds = new LinkedHashMap<>();
    private final Set<String> resultOutputs;
    private final List<Map<String, OnnxTensor>> pinned;
    /**
     * Hands the CPU arena's free regions back after a run (null: planned step memory is off): used after the first
     * run at new feed shapes, whose tensor-by-tensor allocations the planned block of later runs replaces.
     */
    private final OrtSession.RunOptions releaseArena;
    /** Whether a feed's shape changed since the last step (true before the first). */
    private boolean newShapes = true;
    private int current;
    private long steps;
    private boolean closed;

    private static final class StateSlot {
        final String input;
        final String output;
        final DataType type;
        final long[] shape;
        final ByteBuffer[] buffers = new ByteBuffer[2];
        final OnnxTensor[] tensors = new OnnxTensor[2];

        StateSlot(String input, String output, DataType type, long[] shape) {
            this.input = input;
            this.output = output;
            this.type = type;
            this.shape = shape;
        }
    }

    private static final class FeedSlot {
        final String name;
        final DataType type;
        final long[] declared;
        ByteBuffer storage;
        ByteBuffer view;
        long[] shape;
        OnnxTensor tensor;

        FeedSlot(String name, DataType type, long[] declared) {
            this.name = name;
            this.type = type;
            this.declared = declared;
        }
    }

    StatefulSession(CompiledGraph graph, StateSpec spec, Map<String, Tensor> initialState) {
        this.graph = Objects.requireNonNull(graph, "graph");
        Objects.requireNonNull(spec, "spec");
        Objects.requireNonNull(initialState, "initialState");
        this.env = graph.engine().environment();
        this.releaseArena = releaseArenaOptions(graph.engine().options());
        Set<String> stateInputs = new LinkedHashSet<>();
        spec.bindings().forEach(b -> stateInputs.add(b.input()));
        graph.checkFeeds(new LinkedHashSet<>(spec.feeds()), stateInputs);
        for (String s : initialState.keySet()) {
            if (!stateInputs.contains(s)) {
                throw new EngineException("graph '" + graph.name() + "': initial state names '" + s
                        + "', which is not a state input; state inputs are " + stateInputs);
            }
        }
        Set<String> outs = new LinkedHashSet<>(graph.outputNames());
        this.pinned = List.of(new HashMap<>(), new HashMap<>());
        try {
            for (StateSpec.Binding b : spec.bindings()) {
                Tensor init = initialState.get(b.input());
                if (init == null) {
                    throw new EngineException("graph '" + graph.name() + "': no initial value for state input '"
                            + b.input() + "'");
                }
                graph.checkType(b.input(), init);
                TensorInfo out = graph.outputInfo(b.output());
                checkOutputMatches(b, init, out);
                StateSlot slot = new StateSlot(b.input(), b.output(), init.dataType(), init.shape());
                state.put(b.input(), slot);
                int bytes = Math.toIntExact(init.byteSize());
                for (int i = 0; i < 2; i++) {
                    slot.buffers[i] = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
                    slot.tensors[i] = OrtTensors.wrapBuffer(env, slot.buffers[i].duplicate(), slot.type, slot.shape);
                    pinned.get(i).put(b.output(), slot.tensors[i]);
                }
                slot.buffers[0].duplicate().put(init.buffer());
                outs.remove(b.output());
            }
            for (String f : spec.feeds()) {
                TensorInfo ti = graph.inputInfo(f);
                feeds.put(f, new FeedSlot(f, OrtTensors.dataType(ti.onnxType), ti.getShape()));
            }
        } catch (RuntimeException e) {
            releaseTensors();
            throw e;
        }
        this.resultOutputs = Collections.unmodifiableSet(outs);
    }

    private void checkOutputMatches(StateSpec.Binding b, Tensor init, TensorInfo out) {
        DataType outType = OrtTensors.dataType(out.onnxType);
        long[] outShape = out.getShape();
        boolean ok = outType == init.dataType() && outShape.length == init.rank();
        for (int i = 0; ok && i < outShape.length; i++) {
            ok = outShape[i] < 0 || outShape[i] == init.dim(i);
        }
        if (!ok) {
            throw new EngineException("graph '" + graph.name() + "': state output '" + b.output() + "' is "
                    + outType + Arrays.toString(outShape) + " but its input '" + b.input() + "' holds "
                    + init.dataType() + Arrays.toString(init.shape()));
        }
    }

    /** The state inputs, in binding order. */
    public List<String> stateNames() {
        return List.copyOf(state.keySet());
    }

    /** The feed inputs. */
    public List<String> feedNames() {
        return List.copyOf(feeds.keySet());
    }

    /** The outputs returned by {@link #step()}: every graph output that is not state. */
    public Set<String> resultOutputs() {
        return resultOutputs;
    }

    /** Number of completed steps since creation. */
    public long steps() {
        return steps;
    }

    public CompiledGraph graph() {
        return graph;
    }

    // ---- feeds -----------------------------------------------------------------------------------------------

    /** Sets a feed for the next steps; it keeps its value until fed again. */
    public StatefulSession feed(String name, Tensor value) {
        Objects.requireNonNull(value, "value");
        checkOpen();
        graph.checkType(name, value);
        FeedSlot slot = feedSlot(name);
        ByteBuffer dst = prepare(slot, value.shape());
        dst.put(value.buffer());
        return this;
    }

    /** Sets a feed with a single element (any rank of ones), converting {@code v} to the input's element type. */
    public StatefulSession feedScalar(String name, double v) {
        checkOpen();
        FeedSlot slot = feedSlot(name);
        long[] shape = new long[slot.declared.length];
        Arrays.fill(shape, 1);
        ByteBuffer dst = prepare(slot, shape);
        switch (slot.type) {
            case FLOAT -> dst.putFloat(0, (float) v);
            case DOUBLE -> dst.putDouble(0, v);
            case INT64 -> dst.putLong(0, (long) v);
            case INT32 -> dst.putInt(0, (int) v);
            case BOOL -> dst.put(0, (byte) (v != 0 ? 1 : 0));
            case INT8, UINT8 -> dst.put(0, (byte) (long) v);
            case FLOAT16 -> dst.putShort(0, dev.pet.onnx.tensor.Half.floatToFp16((float) v));
            case BFLOAT16 -> dst.putShort(0, dev.pet.onnx.tensor.Half.floatToBf16((float) v));
            default -> throw new EngineException("feed '" + name + "' has element type " + slot.type
                    + ", which a scalar cannot be written to");
        }
        return this;
    }

    /** Sets an INT64 (or INT32) feed from longs, writing straight into the feed's buffer. */
    public StatefulSession feedLongs(String name, long[] values, long... shape) {
        Objects.requireNonNull(values, "values");
        checkOpen();
        FeedSlot slot = feedSlot(name);
        if (slot.type != DataType.INT64 && slot.type != DataType.INT32) {
            throw new EngineException("feed '" + name + "' expects " + slot.type + ", not integers");
        }
        if (Tensor.checkedElementCount(shape) != values.length) {
            throw new EngineException("feed '" + name + "': " + values.length + " values do not fill shape "
                    + Arrays.toString(shape));
        }
        checkShape(slot, shape);
        ByteBuffer dst = prepare(slot, shape);
        if (slot.type == DataType.INT64) {
            dst.asLongBuffer().put(values);
        } else {
            for (int i = 0; i < values.length; i++) {
                dst.putInt(4 * i, Math.toIntExact(values[i]));
            }
        }
        return this;
    }

    private FeedSlot feedSlot(String name) {
        FeedSlot slot = feeds.get(name);
        if (slot == null) {
            throw new EngineException("graph '" + graph.name() + "' has no feed '" + name + "'; feeds are "
                    + feeds.keySet() + (state.containsKey(name) ? " ('" + name + "' is state: use setState)" : ""));
        }
        return slot;
    }

    private void checkShape(FeedSlot slot, long[] shape) {
        boolean ok = shape.length == slot.declared.length;
        for (int i = 0; ok && i < shape.length; i++) {
            ok = slot.declared[i] < 0 || slot.declared[i] == shape[i];
        }
        if (!ok) {
            throw new EngineException("graph '" + graph.name() + "' feed '" + slot.name + "' expects shape "
                    + Arrays.toString(slot.declared) + " (-1 = any), found " + Arrays.toString(shape));
        }
    }

    /** The slot's buffer view for {@code shape}, positioned at 0; reallocates only when the shape changes. */
    private ByteBuffer prepare(FeedSlot slot, long[] shape) {
        checkShape(slot, shape);
        if (slot.tensor == null || !Arrays.equals(slot.shape, shape)) {
            int bytes = Math.toIntExact(Tensor.checkedElementCount(shape) * slot.type.byteSize());
            if (slot.storage == null || slot.storage.capacity() < bytes) {
                slot.storage = ByteBuffer.allocateDirect(bytes).order(ByteOrder.LITTLE_ENDIAN);
            }
            OnnxTensor old = slot.tensor;
            slot.tensor = null;
            if (old != null) {
                old.close();
            }
            slot.view = slot.storage.duplicate().clear().limit(bytes).slice().order(ByteOrder.LITTLE_ENDIAN);
            slot.shape = shape.clone();
            slot.tensor = OrtTensors.wrapBuffer(env, slot.view.duplicate(), slot.type, shape);
            newShapes = true;
        }
        return slot.view.duplicate().clear().order(ByteOrder.LITTLE_ENDIAN);
    }

    // ---- stepping --------------------------------------------------------------------------------------------

    /** Sets the given feeds, then runs one step. */
    public StepOutputs step(Map<String, Tensor> newFeeds) {
        newFeeds.forEach(this::feed);
        return step();
    }

    /** Runs one step with the current feeds, advancing the state. */
    public StepOutputs step() {
        checkOpen();
        Map<String, OnnxTensor> inputs = new HashMap<>();
        for (FeedSlot f : feeds.values()) {
            if (f.tensor == null) {
                throw new EngineException("graph '" + graph.name() + "': feed '" + f.name + "' was never set");
            }
            inputs.put(f.name, f.tensor);
        }
        for (StateSlot s : state.values()) {
            inputs.put(s.input, s.tensors[current]);
        }
        OrtSession session = graph.session();
        Map<String, Tensor> out = new LinkedHashMap<>();
        boolean release = newShapes && releaseArena != null;
        try (OrtSession.Result r = release ? session.run(inputs, resultOutputs, pinned.get(1 - current), releaseArena)
                : session.run(inputs, resultOutputs, pinned.get(1 - current))) {
            for (String name : resultOutputs) {
                OnnxValue v = r.get(name).orElseThrow(() -> new EngineException("ONNX Runtime returned no value "
                        + "for output '" + name + "' of graph '" + graph.name() + "'"));
                out.put(name, OrtTensors.toTensor((OnnxTensor) v));
            }
        } catch (OrtException e) {
            throw new EngineException("step " + steps + " of graph '" + graph.name() + "' failed: "
                    + e.getMessage(), e);
        }
        current = 1 - current;
        steps++;
        newShapes = false;
        return new StepOutputs(out);
    }

    // ---- state -----------------------------------------------------------------------------------------------

    /** A heap copy of the current value of a state input. */
    public Tensor state(String name) {
        checkOpen();
        StateSlot s = stateSlot(name);
        ByteBuffer copy = ByteBuffer.allocate(s.buffers[current].capacity()).order(ByteOrder.LITTLE_ENDIAN);
        copy.put(s.buffers[current].duplicate().clear()).flip();
        return Tensor.of(s.type, s.shape, copy);
    }

    /** Heap copies of all current state, in binding order. */
    public Map<String, Tensor> state() {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (String name : state.keySet()) {
            out.put(name, state(name));
        }
        return out;
    }

    /** Overwrites the current value of a state input (e.g. when resuming from a checkpoint). */
    public void setState(String name, Tensor value) {
        Objects.requireNonNull(value, "value");
        checkOpen();
        StateSlot s = stateSlot(name);
        if (s.type != value.dataType() || !Arrays.equals(s.shape, value.shape())) {
            throw new EngineException("state '" + name + "' is " + s.type + Arrays.toString(s.shape)
                    + ", cannot set it to " + value);
        }
        s.buffers[current].duplicate().clear().put(value.buffer());
    }

    private StateSlot stateSlot(String name) {
        StateSlot s = state.get(name);
        if (s == null) {
            throw new EngineException("graph '" + graph.name() + "' has no state '" + name + "'; state is "
                    + state.keySet());
        }
        return s;
    }

    /** The ORT tensor currently holding a state input; valid until the next step. For tests of buffer reuse. */
    OnnxTensor currentStateTensor(String name) {
        return stateSlot(name).tensors[current];
    }

    /** The ORT tensor currently holding a feed. For tests of buffer reuse. */
    OnnxTensor feedTensor(String name) {
        return feedSlot(name).tensor;
    }

    private void checkOpen() {
        if (closed) {
            throw new EngineException("session for graph '" + graph.name() + "' is closed");
        }
    }

    private void releaseTensors() {
        List<OnnxTensor> all = new ArrayList<>();
        for (StateSlot s : state.values()) {
            all.addAll(Arrays.asList(s.tensors));
        }
        for (FeedSlot f : feeds.values()) {
            all.add(f.tensor);
        }
        for (OnnxTensor t : all) {
            if (t != null) {
                t.close();
            }
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            graph.close();
        } finally {
            if (releaseArena != null) {
                releaseArena.close();
            }
            releaseTensors();
            graph.engine().unregister(this);
        }
    }

    private static OrtSession.RunOptions releaseArenaOptions(EngineOptions options) {
        if (!options.plannedStepMemory() || !options.cpuArena()) {
            return null;
        }
        try {
            OrtSession.RunOptions ro = new OrtSession.RunOptions();
            ro.addRunConfigEntry("memory.enable_memory_arena_shrinkage", "cpu:0");
            return ro;
        } catch (OrtException e) {
            throw new EngineException("cannot create ONNX Runtime run options: " + e.getMessage(), e);
        }
    }
}
