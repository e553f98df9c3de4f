package dev.pet.onnx.io;

import com.google.protobuf.ByteString;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.proto.OnnxProto.AttributeProto;
import dev.pet.onnx.proto.OnnxProto.GraphProto;
import dev.pet.onnx.proto.OnnxProto.NodeProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.proto.OnnxProto.TensorShapeProto;
import dev.pet.onnx.proto.OnnxProto.TypeProto;
import dev.pet.onnx.proto.OnnxProto.ValueInfoProto;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * {@code GraphProto} → IR: values, initializers, nodes, attributes and types, validated as untrusted input (duplicate
 * names, unknown element types); what the IR does not model stays in each object's residual.
 */
final class GraphReader {
    private GraphReader() {
    }

    static Graph graph(GraphProto gp, Function<TensorProto, Tensor> external) {
        Graph g = new Graph(gp.getName());
        Map<String, TensorType> declared = new LinkedHashMap<>();
        Map<String, ValueInfoProto> extraInfo = new LinkedHashMap<>();
        for (ValueInfoProto vi : gp.getValueInfoList()) {
            declared.put(vi.getName(), typeFromProto(vi.getType(), vi.getName()));
            extraInfo.put(vi.getName(), vi);
        }
        for (TensorProto tp : gp.getInitializerList()) {
            if (g.initializer(tp.getName()) != null) {
                throw new OnnxException("graph '" + gp.getName() + "' has two initializers named '" + tp.getName()
                        + "'");
            }
            g.setInitializer(tp.getName(), TensorCodec.fromProto(tp, external));
        }
        for (ValueInfoProto vi : gp.getInputList()) {
            Value v = g.addInput(vi.getName(), typeFromProto(vi.getType(), vi.getName()));
            v.setDocString(vi.getDocString());
        }
        // Values are created before the nodes that produce them, so unsorted graphs read fine.
        for (NodeProto np : gp.getNodeList()) {
            for (String out : np.getOutputList()) {
                if (!out.isEmpty()) {
                    if (g.value(out) != null && (g.value(out).isGraphInput() || g.value(out).isInitializer())) {
                        throw new OnnxException("node '" + np.getName() + "' writes '" + out
                                + "', which is a graph input or initializer");
                    }
                    if (g.value(out) == null) {
                        g.newValue(out, declared.get(out));
                    }
                }
            }
        }
        Set<String> produced = new HashSet<>();
        for (NodeProto np : gp.getNodeList()) {
            List<Value> ins = new ArrayList<>();
            for (String in : np.getInputList()) {
                if (in.isEmpty()) {
                    ins.add(null);
                } else {
                    Value v = g.value(in);
                    if (v == null) {
                        // Outer-scope or undefined name: keep it as an unproduced value so the graph round-trips.
                        v = g.newValue(in, declared.get(in));
                    }
                    ins.add(v);
                }
            }
            List<Value> outs = new ArrayList<>();
            for (String out : np.getOutputList()) {
                if (!out.isEmpty() && !produced.add(out)) {
                    throw new OnnxException("value '" + out + "' is produced by two nodes");
                }
                outs.add(out.isEmpty() ? null : g.value(out));
            }
            List<Attribute> attrs = new ArrayList<>();
            for (AttributeProto ap : np.getAttributeList()) {
                attrs.add(attributeFromProto(ap, external));
            }
            Node n = g.addNodeWithOutputs(np.getOpType(), np.getDomain(), np.getName(), ins, outs, attrs);
            NodeProto residual = np.toBuilder().clearInput().clearOutput().clearName().clearOpType().clearDomain()
                    .clearAttribute().build();
            if (!residual.equals(NodeProto.getDefaultInstance())) {
                n.setResidual(residual);
            }
        }
        for (ValueInfoProto vi : gp.getOutputList()) {
            Value v = g.value(vi.getName());
            if (v == null) {
                throw new OnnxException("graph output '" + vi.getName() + "' is not produced by any node, input or "
                        + "initializer");
            }
            TensorType t = typeFromProto(vi.getType(), vi.getName());
            if (t.dataType() != null || t.hasRank()) {
                v.setType(t);
            }
            g.addOutput(v);
        }
        for (Map.Entry<String, TensorType> e : declared.entrySet()) {
            Value v = g.value(e.getKey());
            if (v != null) {
                v.setDocString(extraInfo.get(e.getKey()).getDocString());
            }
        }
        GraphProto.Builder residual = gp.toBuilder().clearNode().clearName().clearInitializer().clearInput()
                .clearOutput();
        // value_info entries of values the IR knows are rebuilt from the IR; others stay in the residual.
        residual.clearValueInfo();
        for (ValueInfoProto vi : gp.getValueInfoList()) {
            if (g.value(vi.getName()) == null) {
                residual.addValueInfo(vi);
            }
        }
        g.setResidual(residual.build());
        return g;
    }

    static TensorType typeFromProto(TypeProto tp, String name) {
        if (!tp.hasTensorType()) {
            return TensorType.unknown();
        }
        TypeProto.Tensor t = tp.getTensorType();
        DataType dt = t.hasElemType() && t.getElemType() != 0 ? TensorCodec.dataType(t.getElemType(), name)
                : null;
        if (!t.hasShape()) {
            return new TensorType(dt, null);
        }
        List<Dim> dims = new ArrayList<>();
        for (TensorShapeProto.Dimension d : t.getShape().getDimList()) {
            if (d.hasDimValue() && d.getDimValue() >= 0) {
                dims.add(Dim.of(d.getDimValue()));
            } else if (d.hasDimParam() && !d.getDimParam().isEmpty()) {
                dims.add(Dim.symbol(d.getDimParam()));
            } else {
                dims.add(Dim.unknown());
            }
        }
        return new TensorType(dt, dims);
    }

    private static Attribute attributeFromProto(AttributeProto ap, Function<TensorProto, Tensor> external) {
        String name = ap.getName();
        if (!ap.getRefAttrName().isEmpty()) {
            return new Attribute(name, Attribute.Kind.RAW, ap);
        }
        AttributeProto.AttributeType type = ap.hasType() ? ap.getType() : guessType(ap);
        return switch (type) {
            case FLOAT -> Attribute.of(name, ap.getF());
            case INT -> Attribute.of(name, ap.getI());
            case STRING -> Attribute.of(name, ap.getS().toStringUtf8());
            case TENSOR -> Attribute.of(name, TensorCodec.fromProto(ap.getT(), external));
            case FLOATS -> {
                float[] f = new float[ap.getFloatsCount()];
                for (int i = 0; i < f.length; i++) {
                    f[i] = ap.getFloats(i);
                }
                yield Attribute.of(name, f);
            }
            case INTS -> Attribute.of(name, ap.getIntsList().stream().mapToLong(Long::longValue).toArray());
            case STRINGS -> Attribute.ofStrings(name, ap.getStringsList().stream().map(ByteString::toStringUtf8)
                    .toList());
            case TENSORS -> Attribute.ofTensors(name, ap.getTensorsList().stream()
                    .map(t -> TensorCodec.fromProto(t, external)).toList());
            default -> new Attribute(name, Attribute.Kind.RAW, ap);
        };
    }

    /** Very old files omit {@code type}; infer it from the populated field. */
    private static AttributeProto.AttributeType guessType(AttributeProto ap) {
        if (ap.hasF()) {
            return AttributeProto.AttributeType.FLOAT;
        }
        if (ap.hasI()) {
            return AttributeProto.AttributeType.INT;
        }
        if (ap.hasS()) {
            return AttributeProto.AttributeType.STRING;
        }
        if (ap.hasT()) {
            return AttributeProto.AttributeType.TENSOR;
        }
        if (ap.getFloatsCount() > 0) {
            return AttributeProto.AttributeType.FLOATS;
        }
        if (ap.getIntsCount() > 0) {
            return AttributeProto.AttributeType.INTS;
        }
        if (ap.getStringsCount() > 0) {
            return AttributeProto.AttributeType.STRINGS;
        }
        return AttributeProto.AttributeType.UNDEFINED;
    }
}
