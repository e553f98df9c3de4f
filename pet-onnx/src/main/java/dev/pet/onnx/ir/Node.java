package dev.pet.onnx.ir;

import dev.pet.onnx.OnnxException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One operator application. Missing optional inputs and outputs are {@code null} entries (ONNX's empty names).
 * Input edits go through {@link #setInput} so that use lists stay correct.
 */
public final class Node {
    private final Graph graph;
    private String name;
    private final String opType;
    private final String domain;
    private final List<Value> inputs = new ArrayList<>();
    private final List<Value> outputs = new ArrayList<>();
    private final Map<String, Attribute> attributes = new LinkedHashMap<>();
    /** Everything of the original NodeProto that the IR does not model (doc string, metadata, unknown fields). */
    Object residual;

    Node(Graph graph, String name, String opType, String domain) {
        this.graph = graph;
        this.name = name == null ? "" : name;
        this.opType = Objects.requireNonNull(opType, "opType");
        this.domain = domain == null ? "" : domain;
    }

    public Graph graph() {
        return graph;
    }

    public String name() {
        return name;
    }

    public void setName(String name) {
        String old = this.name;
        this.name = name == null ? "" : name;
        graph.nodeRenamed(old, this.name);
    }

    public String opType() {
        return opType;
    }

    /** The operator set domain; {@code ""} is the default ONNX domain ({@code ai.onnx}). */
    public String domain() {
        return domain;
    }

    public List<Value> inputs() {
        return Collections.unmodifiableList(inputs);
    }

    public List<Value> outputs() {
        return Collections.unmodifiableList(outputs);
    }

    /** Input {@code i}, or null when absent or beyond the list. */
    public Value input(int i) {
        return i < inputs.size() ? inputs.get(i) : null;
    }

    /** Output {@code i}, or null when absent or beyond the list. */
    public Value output(int i) {
        return i < outputs.size() ? outputs.get(i) : null;
    }

    public int inputCount() {
        return inputs.size();
    }

    public void setInput(int i, Value v) {
        checkGraph(v);
        while (inputs.size() <= i) {
            inputs.add(null);
        }
        Value old = inputs.get(i);
        if (old != null) {
            old.uses.remove(this);
        }
        inputs.set(i, v);
        if (v != null) {
            v.uses.add(this);
        }
    }

    public void addInput(Value v) {
        setInput(inputs.size(), v);
    }

    void addOutput(Value v) {
        if (v != null) {
            if (v.producer != null) {
                throw new OnnxException("value '" + v.name() + "' is already produced by node '"
                        + v.producer.name() + "'");
            }
            v.producer = this;
        }
        outputs.add(v);
    }

    void setOutputInternal(int index, Value v) {
        while (outputs.size() <= index) {
            outputs.add(null);
        }
        if (outputs.get(index) != null) {
            throw new OnnxException(describe() + " already has output " + index);
        }
        v.producer = this;
        outputs.set(index, v);
    }

    /** Fills an absent (null or beyond the list) output slot; used for optional outputs added later. */
    void setOutputSlot(int i, Value v) {
        while (outputs.size() <= i) {
            outputs.add(null);
        }
        if (outputs.get(i) != null) {
            throw new OnnxException(describe() + " already has output " + i + " ('" + outputs.get(i).name() + "')");
        }
        if (v.producer != null) {
            throw new OnnxException("value '" + v.name() + "' is already produced by " + v.producer.describe());
        }
        v.producer = this;
        outputs.set(i, v);
    }

    void detach() {
        for (Value v : inputs) {
            if (v != null) {
                v.uses.remove(this);
            }
        }
        for (Value v : outputs) {
            if (v != null && v.producer == this) {
                v.producer = null;
            }
        }
    }

    private void checkGraph(Value v) {
        if (v != null && v.graph() != graph) {
            throw new OnnxException("value '" + v.name() + "' belongs to another graph");
        }
    }

    public Map<String, Attribute> attributes() {
        return Collections.unmodifiableMap(attributes);
    }

    public Attribute attribute(String attrName) {
        return attributes.get(attrName);
    }

    public void setAttribute(Attribute a) {
        attributes.put(a.name(), a);
    }

    public void removeAttribute(String attrName) {
        attributes.remove(attrName);
    }

    public long intAttr(String attrName, long defaultValue) {
        Attribute a = attributes.get(attrName);
        return a == null ? defaultValue : a.asInt();
    }

    public float floatAttr(String attrName, float defaultValue) {
        Attribute a = attributes.get(attrName);
        return a == null ? defaultValue : a.asFloat();
    }

    public String stringAttr(String attrName, String defaultValue) {
        Attribute a = attributes.get(attrName);
        return a == null ? defaultValue : a.asString();
    }

    public long[] intsAttr(String attrName, long[] defaultValue) {
        Attribute a = attributes.get(attrName);
        return a == null ? defaultValue : a.asInts();
    }

    public Object residual() {
        return residual;
    }

    public void setResidual(Object residual) {
        this.residual = residual;
    }

    /** A short description for error messages: {@code MatMul 'name'}. */
    public String describe() {
        return opType + (domain.isEmpty() ? "" : "(" + domain + ")") + " '" + name + "'";
    }

    @Override
    public String toString() {
        List<String> in = new ArrayList<>();
        for (Value v : inputs) {
            in.add(v == null ? "" : v.name());
        }
        List<String> out = new ArrayList<>();
        for (Value v : outputs) {
            out.add(v == null ? "" : v.name());
        }
        return describe() + " " + in + " -> " + out + (attributes.isEmpty() ? "" : " " + attributes.values());
    }
}
