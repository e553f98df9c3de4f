package dev.pet.onnx.ir;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;

/**
 * A named edge of the graph: a graph input, an initializer or a node output. Knows its producer and its uses, which
 * {@link Graph} and {@link Node} keep up to date as the graph is edited.
 */
public final class Value {
    private final Graph graph;
    private String name;
    private TensorType type;
    private String docString = "";
    Node producer;
    final List<Node> uses = new ArrayList<>();

    Value(Graph graph, String name, TensorType type) {
        this.graph = graph;
        this.name = Objects.requireNonNull(name, "name");
        this.type = type == null ? TensorType.unknown() : type;
    }

    public Graph graph() {
        return graph;
    }

    public String name() {
        return name;
    }

    /** Renames this value; the new name must be unused in the graph. */
    public void rename(String newName) {
        graph.renameValue(this, newName);
    }

    void setNameInternal(String newName) {
        this.name = newName;
    }

    public TensorType type() {
        return type;
    }

    public void setType(TensorType type) {
        this.type = type == null ? TensorType.unknown() : type;
    }

    public String docString() {
        return docString;
    }

    public void setDocString(String docString) {
        this.docString = docString == null ? "" : docString;
    }

    /** The node computing this value, or null for graph inputs and initializers. */
    public Node producer() {
        return producer;
    }

    /** The nodes reading this value, once per input slot (a node reading it twice appears twice). */
    public List<Node> uses() {
        return Collections.unmodifiableList(uses);
    }

    public boolean isInitializer() {
        return graph.initializer(name) != null;
    }

    public boolean isGraphInput() {
        return graph.inputs().contains(this);
    }

    public boolean isGraphOutput() {
        return graph.outputs().contains(this);
    }

    @Override
    public String toString() {
        return name + ":" + type;
    }
}
