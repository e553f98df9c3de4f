package dev.pet.onnx.io;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Attribute;
import dev.pet.onnx.ir.Dim;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.proto.OnnxProto.AttributeProto;
import dev.pet.onnx.proto.OnnxProto.GraphProto;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.proto.OnnxProto.NodeProto;
import dev.pet.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.pet.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.proto.OnnxProto.TensorShapeProto;
import dev.pet.onnx.proto.OnnxProto.TypeProto;
import dev.pet.onnx.proto.OnnxProto.ValueInfoProto;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;

/**
 * Converts between the IR and {@code ModelProto}. Reading keeps, in each IR object's residual, the original message
 * with the modelled fields cleared, and writing starts from that residual: doc strings, metadata, functions and
 * fields this schema does not declare survive a round trip.
 */
public final class OnnxSerializer {
    /** Protobuf messages cannot exceed 2 GiB. */
    public static final long PROTOBUF_LIMIT = Integer.MAX_VALUE;
    private static final int MAX_NESTING = 64;

    private OnnxSerializer() {
    }

    // ---- reading ---------------------------------------------------------------------------------------------

    /** Parses model bytes whose tensors are all inline. */
    public static Model fromBytes(byte[] bytes) {
        return fromProto(parse(bytes, "<in-memory model>"), t -> {
            throw new OnnxException("tensor '" + t.getName() + "' uses external data, which an in-memory model "
                    + "cannot resolve; read the model from its file");
        });
    }

    static ModelProto parse(byte[] bytes, String source) {
        try {
            CodedInputStream in = CodedInputStream.newInstance(bytes);
            in.setSizeLimit(Integer.MAX_VALUE);
            in.setRecursionLimit(MAX_NESTING);
            return ModelProto.parseFrom(in);
        } catch (InvalidProtocolBufferException e) {
            throw new OnnxException(source + ": not a valid ONNX model (" + e.getMessage() + ")", e);
        } catch (IOException e) {
            throw new OnnxException(source + ": cannot read ONNX model (" + e.getMessage() + ")", e);
        }
    }

    /**
     * Converts a parsed model into the IR. {@code external} resolves tensors whose data lives outside the message.
     */
    public static Model fromProto(ModelProto proto, Function<TensorProto, Tensor> external) {
        if (!proto.hasGraph()) {
            throw new OnnxException("ONNX model has no graph");
        }
        Map<String, Long> opsets = new LinkedHashMap<>();
        for (OperatorSetIdProto o : proto.getOpsetImportList()) {
            opsets.put(o.getDomain(), o.getVersion());
        }
        Graph graph = graphFromProto(proto.getGraph(), external);
        Model model = new Model(graph, opsets.getOrDefault("", opsets.getOrDefault("ai.onnx", 0L)));
        model.opsets().clear();
        model.opsets().putAll(opsets);
        model.setIrVersion(proto.getIrVersion());
        model.setProducerName(proto.getProducerName());
        model.setProducerVersion(proto.getProducerVersion());
        model.setDomain(proto.getDomain());
        model.setModelVersion(proto.getModelVersion());
        model.setDocString(proto.getDocString());
        for (StringStringEntryProto e : proto.getMetadataPropsList()) {
            model.metadata().put(e.getKey(), e.getValue());
        }
        model.setResidual(proto.toBuilder().clearGraph().clearOpsetImport().clearIrVersion().clearProducerName()
                .clearProducerVersion().clearDomain().clearModelVersion().clearDocString().clearMetadataProps()
                .build());
        return model;
    }

    private static Graph graphFromProto(GraphProto gp, Function<TensorProto, Tensor> external) {
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
        DataType dt = t.hasElemType() && t.getElemType() != 0 ? dataType(t.getElemType(), name) : null;
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

    private static DataType dataType(int code, String name) {
        try {
            return DataType.fromOnnx(code);
        } catch (OnnxException e) {
            throw new OnnxException("'" + name + "': " + e.getMessage(), e);
        }
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

    // ---- writing ---------------------------------------------------------------------------------------------

    /** Serialises a model with every tensor inline; fails if the result would exceed the 2 GiB protobuf limit. */
    public static byte[] toBytes(Model model) {
        ModelProto proto = toProto(model, TensorCodec::inline);
        long size = proto.getSerializedSize();
        if (size < 0 || size > PROTOBUF_LIMIT) {
            throw new OnnxException("model is larger than the 2 GiB protobuf limit; write it with external data");
        }
        return proto.toByteArray();
    }

    /**
     * Converts a model to its protobuf form; {@code tensorWriter} decides per initializer whether its bytes go
     * inline or to external data.
     */
    public static ModelProto toProto(Model model, Function<NamedTensor, TensorProto> tensorWriter) {
        ModelProto.Builder b = model.residual() instanceof ModelProto r ? r.toBuilder() : ModelProto.newBuilder();
        b.setIrVersion(model.irVersion());
        for (Map.Entry<String, Long> o : model.opsets().entrySet()) {
            b.addOpsetImport(OperatorSetIdProto.newBuilder().setDomain(o.getKey()).setVersion(o.getValue()));
        }
        if (!model.producerName().isEmpty()) {
            b.setProducerName(model.producerName());
        }
        if (!model.producerVersion().isEmpty()) {
            b.setProducerVersion(model.producerVersion());
        }
        if (!model.domain().isEmpty()) {
            b.setDomain(model.domain());
        }
        if (model.modelVersion() != 0) {
            b.setModelVersion(model.modelVersion());
        }
        if (!model.docString().isEmpty()) {
            b.setDocString(model.docString());
        }
        for (Map.Entry<String, String> e : model.metadata().entrySet()) {
            b.addMetadataProps(StringStringEntryProto.newBuilder().setKey(e.getKey()).setValue(e.getValue()));
        }
        b.setGraph(graphToProto(model.graph(), tensorWriter));
        return b.build();
    }

    /** An initializer on its way to the file: its name and data. */
    public record NamedTensor(String name, Tensor tensor) {
    }

    private static GraphProto graphToProto(Graph g, Function<NamedTensor, TensorProto> tensorWriter) {
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
            b.addInitializer(tensorWriter.apply(new NamedTensor(e.getKey(), e.getValue())));
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

    private static NodeProto nodeToProto(Node n, Function<NamedTensor, TensorProto> tensorWriter) {
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

    private static AttributeProto attributeToProto(Attribute a, Function<NamedTensor, TensorProto> tensorWriter) {
        if (a.kind() == Attribute.Kind.RAW) {
            return (AttributeProto) a.value();
        }
        AttributeProto.Builder b = AttributeProto.newBuilder().setName(a.name());
        switch (a.kind()) {
            case FLOAT -> b.setType(AttributeProto.AttributeType.FLOAT).setF(a.asFloat());
            case INT -> b.setType(AttributeProto.AttributeType.INT).setI(a.asInt());
            case STRING -> b.setType(AttributeProto.AttributeType.STRING).setS(ByteString.copyFromUtf8(a.asString()));
            case TENSOR -> b.setType(AttributeProto.AttributeType.TENSOR).setT(TensorCodec.inline(
                    new NamedTensor("", a.asTensor())));
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
                a.asTensors().forEach(t -> b.addTensors(TensorCodec.inline(new NamedTensor("", t))));
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

    /** Encoding and decoding of tensor data. */
    static final class TensorCodec {
        private TensorCodec() {
        }

        static TensorProto.Builder header(String name, Tensor t) {
            TensorProto.Builder b = TensorProto.newBuilder().setDataType(t.dataType().onnxCode());
            if (!name.isEmpty()) {
                b.setName(name);
            }
            for (long d : t.shape()) {
                b.addDims(d);
            }
            return b;
        }

        static TensorProto inline(NamedTensor nt) {
            Tensor t = nt.tensor();
            if (t.byteSize() > PROTOBUF_LIMIT) {
                throw new OnnxException("tensor '" + nt.name() + "' (" + t.byteSize() + " bytes) cannot be stored "
                        + "inline; write the model with external data");
            }
            TensorProto.Builder b = header(nt.name(), t);
            ByteBuffer buf = t.buffer();
            if (buf.isDirect() || !buf.hasArray()) {
                try {
                    ByteArrayOutputStream out = new ByteArrayOutputStream((int) t.byteSize());
                    t.data().writeTo(Channels.newChannel(out));
                    b.setRawData(ByteString.copyFrom(out.toByteArray()));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            } else {
                b.setRawData(ByteString.copyFrom(buf));
            }
            return b.build();
        }

        static Tensor fromProto(TensorProto tp, Function<TensorProto, Tensor> external) {
            String name = tp.getName();
            DataType dt = dataType(tp.getDataType(), name.isEmpty() ? "<tensor>" : name);
            long[] shape = tp.getDimsList().stream().mapToLong(Long::longValue).toArray();
            long count;
            try {
                count = Tensor.checkedElementCount(shape);
                Math.multiplyExact(count, (long) Math.max(1, dt.byteSize()));
            } catch (ArithmeticException | OnnxException e) {
                throw new OnnxException("tensor '" + name + "' has an invalid shape " + tp.getDimsList());
            }
            if (tp.hasSegment()) {
                throw new OnnxException("tensor '" + name + "' is segmented, which is not supported");
            }
            if (tp.getDataLocation() == TensorProto.DataLocation.EXTERNAL) {
                Tensor t = external.apply(tp);
                if (t.dataType() != dt || !java.util.Arrays.equals(t.shape(), shape)) {
                    throw new OnnxException("tensor '" + name + "': external data does not match its declared type");
                }
                return t;
            }
            if (tp.hasRawData()) {
                ByteString raw = tp.getRawData();
                long expected = count * dt.byteSize();
                if (raw.size() != expected) {
                    throw new OnnxException("tensor '" + name + "' of " + dt + java.util.Arrays.toString(shape)
                            + " needs " + expected + " bytes of raw_data but has " + raw.size());
                }
                ByteBuffer bb = raw.asReadOnlyByteBuffer();
                return Tensor.of(dt, shape, bb.order(ByteOrder.LITTLE_ENDIAN));
            }
            return fromTypedFields(tp, dt, shape, count);
        }

        private static Tensor fromTypedFields(TensorProto tp, DataType dt, long[] shape, long count) {
            String name = tp.getName();
            int available = switch (dt) {
                case FLOAT -> tp.getFloatDataCount();
                case DOUBLE -> tp.getDoubleDataCount();
                case INT64 -> tp.getInt64DataCount();
                case UINT32, UINT64 -> tp.getUint64DataCount();
                default -> tp.getInt32DataCount();
            };
            if (available != count) {
                throw new OnnxException("tensor '" + name + "' of " + dt + java.util.Arrays.toString(shape)
                        + " needs " + count + " values but has " + available);
            }
            int n = (int) count;
            ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(n, dt.byteSize())).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                switch (dt) {
                    case FLOAT -> b.putFloat(tp.getFloatData(i));
                    case DOUBLE -> b.putDouble(tp.getDoubleData(i));
                    case INT64 -> b.putLong(tp.getInt64Data(i));
                    case UINT64 -> b.putLong(tp.getUint64Data(i));
                    case UINT32 -> b.putInt((int) tp.getUint64Data(i));
                    case INT32 -> b.putInt(tp.getInt32Data(i));
                    case INT16, UINT16, FLOAT16, BFLOAT16 -> b.putShort((short) tp.getInt32Data(i));
                    case INT8, UINT8, BOOL -> b.put((byte) tp.getInt32Data(i));
                    default -> throw new OnnxException("tensor '" + name + "': cannot decode " + dt);
                }
            }
            return Tensor.of(dt, shape, b.flip());
        }
    }
}
