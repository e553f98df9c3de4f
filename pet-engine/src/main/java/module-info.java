/**
 * Runs ONNX graphs with ONNX Runtime: device selection, one reusable session per graph, frozen weights supplied as
 * external initializers, and stateful train steps whose state lives in double-buffered direct memory.
 */
module dev.pet.engine {
    requires transitive dev.pet.onnx;
    requires transitive com.microsoft.onnxruntime;
    requires com.google.protobuf;

    exports dev.pet.engine;
}
