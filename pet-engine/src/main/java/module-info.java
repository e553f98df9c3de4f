/**
 * Runs ONNX graphs with ONNX Runtime: device selection, one reusable session per graph, frozen weights supplied as
 * external initializers, and stateful train steps whose state lives in double-buffered direct memory.
 */
@SuppressWarnings("requires-transitive-automatic") // ONNX Runtime types are part of the engine's API
module dev.pet.engine {
    requires transitive dev.pet.onnx;
    requires transitive com.microsoft.onnxruntime;
    requires com.google.protobuf;

    exports dev.pet.engine;
}
