package dev.pet.onnx.ir;

import dev.pet.onnx.OnnxException;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A mutable ONNX graph built for transformation: values by name with use-def chains, nodes, inputs, outputs and
 * initializers (constant tensors). Not thread-safe.
 */
public final class Graph {
    private String name;
    private final Map<String, Value> values = new LinkedHashMap<>();
    private final List<Node> nodes = new ArrayList<>();
    private final List<Value> inputs = new ArrayList<>();
    private final List<Value> outputs = new ArrayList<>();
    private final Map<String, Tensor> initializers = new LinkedHashMap<>();
    private final Map<String, Integer> nameCounters = new HashMap<>();
    private final Map<String, Integer> nodeNames = new HashMap<>();
    /** Everything of the original GraphProto that the IR does not model. */
    private Object residual;

    public Graph(String name) {
        this.name = name == null ? "" : name;
    }

    public String name() {
        return name;
    }

    public void setName(String name) {
        this.name = name == null ? "" : name;
    }

    public Object residual() {
        return residual;
    }

    public void setResidual(Object residual) {
        this.residual = residual;
    }

    // ---- values --------------------------------------------------------------------------------------------

    /** The value with this name, or null. */
    public Value value(String valueName) {
        return values.get(valueName);
    }

    /** The value with this name; fails with a clear message when absent. */
    public Value requireValue(String valueName) {
        Value v = values.get(valueName);
        if (v == null) {
            throw new OnnxException("graph '" + name + "' has no value named '" + valueName + "'");
        }
        return v;
    }

    public Collection<Value> values() {
        return Collections.unmodifiableCollection(values.values());
    }

    /** A name not yet used in this graph, derived from {@code base}. */
    public String uniqueName(String base) {
        String b = base == null || base.isEmpty() ? "v" : base;
        if (!values.containsKey(b) && !initializers.containsKey(b)) {
            return b;
        }
        int n = nameCounters.getOrDefault(b, 0);
        String candidate;
        do {
            n++;
            candidate = b + "_" + n;
        } while (values.containsKey(candidate) || initializers.containsKey(candidate));
        nameCounters.put(b, n);
        return candidate;
    }

    /** A node name not yet used in this graph, derived from {@code base}. */
    public String uniqueNodeName(String base) {
        String b = base == null || base.isEmpty() ? "node" : base;
        if (!nodeNames.containsKey(b)) {
            return b;
        }
        int n = nameCounters.getOrDefault("node:" + b, 0);
        String candidate;
        do {
            n++;
            candidate = b + "_" + n;
        } while (nodeNames.containsKey(candidate));
        nameCounters.put("node:" + b, n);
        return candidate;
    }

    void nodeRenamed(String oldName, String newName) {
        forgetNodeName(oldName);
        rememberNodeName(newName);
    }

    private void rememberNodeName(String nodeName) {
        if (!nodeName.isEmpty()) {
            nodeNames.merge(nodeName, 1, Integer::sum);
        }
    }

    private void forgetNodeName(String nodeName) {
        if (!nodeName.isEmpty()) {
            nodeNames.computeIfPresent(nodeName, (k, c) -> c == 1 ? null : c - 1);
        }
    }

    /** Creates a value that no node produces yet; used by builders and readers. */
    public Value newValue(String valueName, TensorType type) {
        if (values.containsKey(valueName)) {
            throw new OnnxException("graph '" + name + "' already has a value named '" + valueName + "'");
        }
        Value v = new Value(this, valueName, type);
        values.put(valueName, v);
        return v;
    }

    void renameValue(Value v, String newName) {
        if (v.name().equals(newName)) {
            return;
        }
        if (values.containsKey(newName)) {
            throw new OnnxException("cannot rename '" + v.name() + "': '" + newName + "' is already used");
        }
        values.remove(v.name());
        Tensor init = initializers.remove(v.name());
        v.setNameInternal(newName);
        values.put(newName, v);
        if (init != null) {
            initializers.put(newName, init);
        }
    }

    // ---- inputs, outputs, initializers ---------------------------------------------------------------------

    public List<Value> inputs() {
        return Collections.unmodifiableList(inputs);
    }

    public List<Value> outputs() {
        return Collections.unmodifiableList(outputs);
    }

    public Value addInput(String inputName, TensorType type) {
        Value v = values.get(inputName);
        if (v == null) {
            v = newValue(inputName, type);
        } else if (type != null) {
            v.setType(type);
        }
        if (!inputs.contains(v)) {
            inputs.add(v);
        }
        return v;
    }

    public void removeInput(Value v) {
        inputs.remove(v);
    }

    public void addOutput(Value v) {
        checkOwn(v);
        outputs.add(v);
    }

    public void setOutput(int i, Value v) {
        checkOwn(v);
        outputs.set(i, v);
    }

    public void removeOutput(Value v) {
        outputs.remove(v);
    }

    public void clearOutputs() {
        outputs.clear();
    }

    public Map<String, Tensor> initializers() {
        return Collections.unmodifiableMap(initializers);
    }

    public Tensor initializer(String initName) {
        return initializers.get(initName);
    }

    /** Adds or replaces a constant tensor and returns its value. */
    public Value setInitializer(String initName, Tensor tensor) {
        Value v = values.get(initName);
        if (v == null) {
            v = newValue(initName, TensorType.of(tensor.dataType(), tensor.shape()));
        } else {
            if (v.producer() != null) {
                throw new OnnxException("'" + initName + "' is computed by " + v.producer().describe()
                        + " and cannot also be an initializer");
            }
            v.setType(TensorType.of(tensor.dataType(), tensor.shape()));
        }
        initializers.put(initName, tensor);
        return v;
    }

    /** Drops the constant data of an initializer, keeping its value (e.g. to turn it into a graph input). */
    public Tensor removeInitializer(String initName) {
        return initializers.remove(initName);
    }

    /** Removes an initializer that nothing reads any more, value and all (a rewrite replaced its readers). */
    public Tensor dropInitializer(String initName) {
        Value v = values.get(initName);
        if (v != null && (!v.uses.isEmpty() || outputs.contains(v) || inputs.contains(v))) {
            throw new OnnxException("cannot drop initializer '" + initName + "': it is still read");
        }
        values.remove(initName);
        return initializers.remove(initName);
    }

    /** Turns an initializer into a graph input of the same name and type, returning its former data. */
    public Tensor promoteInitializerToInput(String initName) {
        Tensor t = initializers.remove(initName);
        if (t == null) {
            throw new OnnxException("graph '" + name + "' has no initializer named '" + initName + "'");
        }
        addInput(initName, TensorType.of(t.dataType(), t.shape()));
        return t;
    }

    // ---- nodes ---------------------------------------------------------------------------------------------

    public List<Node> nodes() {
        return Collections.unmodifiableList(nodes);
    }

    /**
     * Appends a node reading {@code inputs} (nulls for absent optional inputs) and producing new values named
     * {@code outputNames} (null entries for absent optional outputs).
     */
    public Node addNode(String opType, String domain, String nodeName, List<Value> nodeInputs,
            List<String> outputNames, Collection<Attribute> attrs) {
        Node n = new Node(this, nodeName, opType, domain);
        for (Value in : nodeInputs) {
            n.addInput(in);
        }
        for (String out : outputNames) {
            n.addOutput(out == null ? null : newValue(out, null));
        }
        if (attrs != null) {
            attrs.forEach(n::setAttribute);
        }
        nodes.add(n);
        rememberNodeName(n.name());
        return n;
    }

    /**
     * Appends a copy of {@code n} that reads, for each input, its replacement in {@code renamed} if it has one (else
     * the input itself), named {@code nodeName} (made unique), its outputs named after the originals plus
     * {@code suffix} (made unique), and records each original output's copy in {@code renamed}, so that copying a
     * region's nodes in topological order rewires the copies to each other. Output types are left to the caller.
     */
    public Node addCopy(Node n, Map<Value, Value> renamed, String nodeName, String suffix) {
        List<Value> inputs = new ArrayList<>();
        for (Value in : n.inputs()) {
            inputs.add(in == null ? null : renamed.getOrDefault(in, in));
        }
        List<String> outNames = new ArrayList<>();
        for (Value out : n.outputs()) {
            outNames.add(out == null ? null : uniqueName(out.name() + suffix));
        }
        Node c = addNode(n.opType(), n.domain(), uniqueNodeName(nodeName), inputs, outNames, n.attributes().values());
        for (int i = 0; i < n.outputs().size(); i++) {
            if (n.output(i) != null) {
                renamed.put(n.output(i), c.output(i));
            }
        }
        return c;
    }

    /**
     * Adds a node whose outputs are existing values that nothing produces yet (as a reader of a file does when
     * values are declared before their producers).
     */
    public Node addNodeWithOutputs(String opType, String domain, String nodeName, List<Value> nodeInputs,
            List<Value> nodeOutputs, Collection<Attribute> attrs) {
        Node n = new Node(this, nodeName, opType, domain);
        for (Value in : nodeInputs) {
            n.addInput(in);
        }
        for (Value out : nodeOutputs) {
            if (out != null) {
                checkOwn(out);
            }
            n.addOutput(out);
        }
        if (attrs != null) {
            attrs.forEach(n::setAttribute);
        }
        nodes.add(n);
        rememberNodeName(n.name());
        return n;
    }

    /**
     * Gives a node's optional output {@code index} (absent so far) a new value, e.g. to read the Mean/InvStdDev of a
     * LayerNormalization or the mask of a Dropout. Returns the existing value if it is already present.
     */
    public Value ensureOutput(Node n, int index, TensorType type) {
        Value existing = n.output(index);
        if (existing != null) {
            return existing;
        }
        Value v = newValue(uniqueName(n.name().isEmpty() ? n.opType() + "_out" : n.name() + "_output_" + index),
                type);
        n.setOutputInternal(index, v);
        return v;
    }

    /**
     * Gives a node a new value in an absent optional output slot (e.g. LayerNormalization's Mean and InvStdDev, a
     * Dropout mask), keeping the node and its other outputs as they are.
     */
    public Value addOptionalOutput(Node n, int index, String valueName) {
        if (n.graph() != this) {
            throw new OnnxException(n.describe() + " belongs to another graph");
        }
        Value v = newValue(valueName, null);
        n.setOutputSlot(index, v);
        return v;
    }

    /** Removes a node; its outputs must no longer be used or be graph outputs. */
    public void removeNode(Node n) {
        for (Value out : n.outputs()) {
            if (out == null) {
                continue;
            }
            if (!out.uses.isEmpty() || outputs.contains(out)) {
                throw new OnnxException("cannot remove " + n.describe() + ": its output '" + out.name()
                        + "' is still used");
            }
        }
        n.detach();
        nodes.remove(n);
        forgetNodeName(n.name());
        for (Value out : n.outputs()) {
            if (out != null) {
                values.remove(out.name());
            }
        }
    }

    /** Makes every reader of {@code old} (nodes and graph outputs) read {@code replacement} instead. */
    public void replaceAllUses(Value old, Value replacement) {
        replaceUses(old, replacement);
    }

    /**
     * Makes every reader of {@code old} (nodes and graph outputs) read {@code replacement} instead, except the
     * given nodes: the injection step of every PET method, whose new nodes read {@code old} to compute
     * {@code replacement} (y' = y + delta keeps reading y) and must not be redirected into a cycle.
     */
    public void replaceUses(Value old, Value replacement, Node... except) {
        checkOwn(replacement);
        java.util.Set<Node> keep = java.util.Collections.newSetFromMap(new IdentityHashMap<>());
        keep.addAll(java.util.Arrays.asList(except));
        for (Node user : new ArrayList<>(old.uses)) {
            if (keep.contains(user)) {
                continue;
            }
            for (int i = 0; i < user.inputCount(); i++) {
                if (user.input(i) == old) {
                    user.setInput(i, replacement);
                }
            }
        }
        for (int i = 0; i < outputs.size(); i++) {
            if (outputs.get(i) == old) {
                outputs.set(i, replacement);
            }
        }
    }

    /**
     * The nodes in an order where every node comes after the producers of its inputs; stable with respect to
     * the current order. Fails naming a node on a cycle.
     */
    public List<Node> topologicalOrder() {
        Map<Node, Integer> pending = new IdentityHashMap<>();
        Map<Node, Integer> position = new IdentityHashMap<>();
        for (int i = 0; i < nodes.size(); i++) {
            position.put(nodes.get(i), i);
        }
        java.util.PriorityQueue<Node> ready = new java.util.PriorityQueue<>(
                (a, b) -> Integer.compare(position.get(a), position.get(b)));
        for (Node n : nodes) {
            int count = 0;
            for (Value in : n.inputs()) {
                if (in != null && in.producer() != null && in.producer() != n) {
                    count++;
                }
            }
            pending.put(n, count);
            if (count == 0) {
                ready.add(n);
            }
        }
        List<Node> order = new ArrayList<>(nodes.size());
        while (!ready.isEmpty()) {
            Node n = ready.poll();
            order.add(n);
            for (Value out : n.outputs()) {
                if (out == null) {
                    continue;
                }
                for (Node user : out.uses) {
                    if (user == n) {
                        continue;
                    }
                    int left = pending.merge(user, -1, Integer::sum);
                    if (left == 0) {
                        ready.add(user);
                    }
                }
            }
        }
        if (order.size() != nodes.size()) {
            for (Node n : nodes) {
                if (pending.get(n) > 0) {
                    throw new OnnxException("graph '" + name + "' has a cycle through " + n.describe());
                }
            }
        }
        return order;
    }

    /** Reorders the node list topologically. */
    public void sortTopologically() {
        List<Node> order = topologicalOrder();
        nodes.clear();
        nodes.addAll(order);
    }

    /**
     * Removes nodes that contribute to no graph output, and initializers and values nothing reads. Returns the
     * number of nodes removed.
     */
    public int removeUnused() {
        Set<Node> live = Collections.newSetFromMap(new IdentityHashMap<>());
        Deque<Value> work = new ArrayDeque<>(outputs);
        while (!work.isEmpty()) {
            Value v = work.pop();
            Node p = v.producer();
            if (p != null && live.add(p)) {
                for (Value in : p.inputs()) {
                    if (in != null) {
                        work.push(in);
                    }
                }
            }
        }
        int removed = 0;
        List<Node> order = topologicalOrder();
        for (int i = order.size() - 1; i >= 0; i--) {
            Node n = order.get(i);
            if (!live.contains(n)) {
                n.detach();
                nodes.remove(n);
                forgetNodeName(n.name());
                for (Value out : n.outputs()) {
                    if (out != null) {
                        values.remove(out.name());
                    }
                }
                removed++;
            }
        }
        for (String init : new ArrayList<>(initializers.keySet())) {
            Value v = values.get(init);
            if (v != null && v.uses.isEmpty() && !outputs.contains(v) && !inputs.contains(v)) {
                initializers.remove(init);
                values.remove(init);
            }
        }
        Set<String> keep = new HashSet<>();
        inputs.forEach(v -> keep.add(v.name()));
        outputs.forEach(v -> keep.add(v.name()));
        values.values().removeIf(v -> v.producer() == null && v.uses.isEmpty() && !keep.contains(v.name())
                && !initializers.containsKey(v.name()));
        return removed;
    }

    private void checkOwn(Value v) {
        if (v.graph() != this) {
            throw new OnnxException("value '" + v.name() + "' belongs to another graph");
        }
    }

    /** A deep copy of the structure; tensors (immutable) are shared. */
    public Graph copy() {
        Graph g = new Graph(name);
        g.residual = residual;
        for (Value v : values.values()) {
            Value c = g.newValue(v.name(), v.type());
            c.setDocString(v.docString());
        }
        g.initializers.putAll(initializers);
        for (Value in : inputs) {
            g.inputs.add(g.values.get(in.name()));
        }
        for (Node n : nodes) {
            List<Value> ins = new ArrayList<>();
            for (Value in : n.inputs()) {
                ins.add(in == null ? null : g.values.get(in.name()));
            }
            List<Value> outs = new ArrayList<>();
            for (Value out : n.outputs()) {
                outs.add(out == null ? null : g.values.get(out.name()));
            }
            Node c = g.addNodeWithOutputs(n.opType(), n.domain(), n.name(), ins, outs, n.attributes().values());
            c.residual = n.residual;
        }
        for (Value out : outputs) {
            g.outputs.add(g.values.get(out.name()));
        }
        g.nameCounters.putAll(nameCounters);
        return g;
    }

    @Override
    public String toString() {
        return "Graph(" + name + ", " + nodes.size() + " nodes, " + initializers.size() + " initializers)";
    }
}
