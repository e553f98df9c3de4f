package dev.pet.onnx.io;

import com.google.protobuf.ByteString;
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
import dev.pet.onnx.tensor.Tensor;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * IR → {@code GraphProto}, starting from each object's residual so unmodelled fields survive; nodes are written in
 * topological order and typed intermediate values as {@code value_info}.
 */
final class GraphWriter {
    private GraphWriter() {
    }

    static GraphProto graph(Graph g, Function<OnnxSerializer.NamedTensor, TensorProto> tensorWriter) {
        GraphProto.Builder b = g.residual() instanceof GraphProto r ? r.toBuilder() : GraphProto.newBuilder();
        b.setName(g.name().isEmpty() ? "graph" : g.name());
        Set<String> io = new HashSet<>();
        for (Value v : g.inputs()) {
            b.addInput(valueInfo(v));
            io.add(v.name());
        }
        for (Value v : g.outputs()) {
            b.addOutput(valueInfo(v));
            io.add(v.name());
        }
        for (Map.Entry<String, Tensor> e : g.initializers().entrySet()) {
            b.addInitializer(tensorWriter.apply(new OnnxSerializer.NamedTensor(e.getKey(), e.getValue())));
            io.add(e.getKey());
        }
        for (Node n : g.topologicalOrder()) {
            b.addNode(nodeToProto(n, tensorWriter));
        }
        for (Value v : g.values()) {
            if (!io.contains(v.name()) && (v.type().dataType() != null || v.type().hasRank()
                    || !v.docString().isEmpty())) {
                b.addValueInfo(valueInfo(v));
            }
        }
        return b.build();
    }

    private static NodeProto nodeToProto(Node n, Function<OnnxSerializer.NamedTensor, TensorProto> tensorWriter) {
        NodeProto.Builder b = n.residual() instanceof NodeProto r ? r.toBuilder() : NodeProto.newBuilder();
        for (Value v : n.inputs()) {
            b.addInput(v == null ? "" : v.name());
        }
        // Trailing absent outputs are dropped; inner ones stay as empty names.
        int last = n.outputs().size() - 1;
        while (last >= 0 && n.output(last) == null) {
            last--;
        }
        for (int i = 0; i <= last; i++) {
            Value v = n.output(i);
            b.addOutput(v == null ? "" : v.name());
        }
        if (!n.name().isEmpty()) {
            b.setName(n.name());
        }
        b.setOpType(n.opType());
        if (!n.domain().isEmpty()) {
            b.setDomain(n.domain());
        }
        for (Attribute a : n.attributes().values()) {
            b.addAttribute(attributeToProto(a, tensorWriter));
        }
        return b.build();
    }

    private static AttributeProto attributeToProto(Attribute a, Function<OnnxSerializer.NamedTensor, TensorProto> tensorWriter) {
        if (a.kind() == Attribute.Kind.RAW) {
            return (AttributeProto) a.value();
        }
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(a.name());
        switch (a.kind()) {
            case FLOAT -> b.setType(AttributeProto.AttributeType.FLOAT).setF(a.asFloat());
            case INT -> b.setType(AttributeProto.AttributeType.INT).setI(a.asInt());
            case STRING -> b.setType(AttributeProto.AttributeType.STRING).setS(ByteString.copyFromUtf8(a.asString()));
            case TENSOR -> b.setType(AttributeProto.AttributeType.TENSOR).setT(TensorCodec.inline(
                    new OnnxSerializer.NamedTensor("", a.asTensor())));
            case FLOATS -> {
                b.setType(AttributeProto.AttributeType.FLOATS);
                for (float f : a.asFloats()) {
                    b.addFloats(f);
                }
            }
            case INTS -> {
                b.setType(AttributeProto.AttributeType.INTS);
                for (long i : a.asInts()) {
                    b.addInts(i);
                }
            }
            case STRINGS -> {
                b.setType(AttributeProto.AttributeType.STRINGS);
                a.asStrings().forEach(s -> b.addStrings(ByteString.copyFromUtf8(s)));
            }
            case TENSORS -> {
                b.setType(AttributeProto.AttributeType.TENSORS);
                a.asTensors().forEach(t -> b.addTensors(TensorCodec.inline(new OnnxSerializer.NamedTensor("", t))));
            }
            default -> throw new IllegalStateException(a.kind().toString());
        }
        return b.build();
    }

    static ValueInfoProto valueInfo(Value v) {
        ValueInfoProto.Builder b = ValueInfoProto.newBuilder().setName(v.name());
        if (!v.docString().isEmpty()) {
            b.setDocString(v.docString());
        }
        TensorType t = v.type();
        if (t.dataType() != null || t.hasRank()) {
            TypeProto.Tensor.Builder tt = TypeProto.Tensor.newBuilder();
            if (t.dataType() != null) {
                tt.setElemType(t.dataType().onnxCode());
            }
            if (t.hasRank()) {
                TensorShapeProto.Builder s = TensorShapeProto.newBuilder();
                for (Dim d : t.dims()) {
                    TensorShapeProto.Dimension.Builder db = TensorShapeProto.Dimension.newBuilder();
                    if (d.isFixed()) {
                        db.setDimValue(d.value());
                    } else if (d.isSymbolic()) {
                        db.setDimParam(d.param());
                    }
                    s.addDim(db);
                }
                tt.setShape(s);
            }
            b.setType(TypeProto.newBuilder().setTensorType(tt));
        }
        return b.build();
    }
}
