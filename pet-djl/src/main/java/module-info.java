/**
 * PET Runtime exports as DJL models: {@code Criteria.builder().setTypes(String.class, String.class)
 * .optModelPath(exportDir)} loads an exported model through DJL's ONNX Runtime engine and generates text with a
 * key/value cache, sampling with pet-engine's {@code Sampler} and tokenizing with the model family's plugin.
 */
module dev.pet.djl {
    requires transitive ai.djl.api;
    requires ai.djl.onnxruntime_engine;
    requires dev.pet.api;
    requires dev.pet.engine;
    requires com.fasterxml.jackson.databind;

    exports dev.pet.djl;

    uses dev.pet.api.ModelProvider;
    uses dev.pet.api.PetAdapter;
}
