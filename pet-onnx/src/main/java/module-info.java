/**
 * The ONNX substrate of PET Runtime: tensors, an in-memory ONNX IR, file formats, a typed graph builder,
 * reverse-mode autodiff and optimizer graphs.
 */
module dev.pet.onnx {
    requires com.google.protobuf;
    requires com.fasterxml.jackson.databind;

    exports dev.pet.onnx.tensor;
    exports dev.pet.onnx.ir;
    exports dev.pet.onnx.build;
    exports dev.pet.onnx.autodiff;
    exports dev.pet.onnx.optim;
    exports dev.pet.onnx.io;
    exports dev.pet.onnx.quant;
    exports dev.pet.onnx.proto;
    exports dev.pet.onnx;
}
