package dev.pet.onnx.ir;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * An ONNX model: a graph plus the operator sets it uses and descriptive metadata. Everything of the file that the
 * IR does not model (functions, training info, unknown fields) is kept in {@link #residual()} and written back.
 */
public final class Model {
    /** IR version 8 is understood by every ONNX Runtime since 1.10 and by the opsets we emit (17-21). */
    public static final long DEFAULT_IR_VERSION = 8;

    private Graph graph;
    private long irVersion = DEFAULT_IR_VERSION;
    private final Map<String, Long> opsets = new LinkedHashMap<>();
    private String producerName = "pet-runtime";
    private String producerVersion = "";
    private String domain = "";
    private long modelVersion;
    private String docString = "";
    private final Map<String, String> metadata = new LinkedHashMap<>();
    private Object residual;

    public Model(Graph graph, long defaultOpset) {
        this.graph = Objects.requireNonNull(graph, "graph");
        opsets.put("", defaultOpset);
    }

    public Graph graph() {
        return graph;
    }

    public void setGraph(Graph graph) {
        this.graph = Objects.requireNonNull(graph, "graph");
    }

    public long irVersion() {
        return irVersion;
    }

    public void setIrVersion(long irVersion) {
        this.irVersion = irVersion;
    }

    /** Operator set versions by domain ({@code ""} is the default ONNX domain). Mutable. */
    public Map<String, Long> opsets() {
        return opsets;
    }

    /** The version of the default ONNX operator set. */
    public long opset() {
        return opsets.getOrDefault("", opsets.getOrDefault("ai.onnx", 0L));
    }

    public String producerName() {
        return producerName;
    }

    public void setProducerName(String producerName) {
        this.producerName = producerName == null ? "" : producerName;
    }

    public String producerVersion() {
        return producerVersion;
    }

    public void setProducerVersion(String producerVersion) {
        this.producerVersion = producerVersion == null ? "" : producerVersion;
    }

    public String domain() {
        return domain;
    }

    public void setDomain(String domain) {
        this.domain = domain == null ? "" : domain;
    }

    public long modelVersion() {
        return modelVersion;
    }

    public void setModelVersion(long modelVersion) {
        this.modelVersion = modelVersion;
    }

    public String docString() {
        return docString;
    }

    public void setDocString(String docString) {
        this.docString = docString == null ? "" : docString;
    }

    /** {@code metadata_props}. Mutable. */
    public Map<String, String> metadata() {
        return metadata;
    }

    public Object residual() {
        return residual;
    }

    public void setResidual(Object residual) {
        this.residual = residual;
    }

    /** A copy whose graph can be transformed without touching this model. */
    public Model copy() {
        Model m = new Model(graph.copy(), opset());
        m.opsets.clear();
        m.opsets.putAll(opsets);
        m.irVersion = irVersion;
        m.producerName = producerName;
        m.producerVersion = producerVersion;
        m.domain = domain;
        m.modelVersion = modelVersion;
        m.docString = docString;
        m.metadata.putAll(metadata);
        m.residual = residual;
        return m;
    }
}
