package dev.pet.onnx.io;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.InvalidProtocolBufferException;
import dev.pet.onnx.OnnxException;
import dev.pet.onnx.ir.Graph;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.proto.OnnxProto.ModelProto;
import dev.pet.onnx.proto.OnnxProto.OperatorSetIdProto;
import dev.pet.onnx.proto.OnnxProto.StringStringEntryProto;
import dev.pet.onnx.proto.OnnxProto.TensorProto;
import dev.pet.onnx.tensor.Tensor;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Function;

/**
 * Converts between the IR and {@code ModelProto}. Reading keeps, in each IR object's residual, the original message
 * with the modelled fields cleared, and writing starts from that residual: doc strings, metadata, functions and
 * fields this schema does not declare survive a round trip. The model level lives here; graphs are read by
 * {@link GraphReader} and written by {@link GraphWriter}, tensor data is encoded by {@link TensorCodec}.
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
        Graph graph = GraphReader.graph(proto.getGraph(), external);
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
        b.setGraph(GraphWriter.graph(model.graph(), tensorWriter));
        return b.build();
    }

    /** An initializer on its way to the file: its name and data. */
    public record NamedTensor(String name, Tensor tensor) {
    }
}
