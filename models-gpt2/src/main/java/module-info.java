/**
 * GPT-2 for PET Runtime: the forward graph built as ONNX with Hugging Face names and anatomy, Hugging Face
 * checkpoints, the byte-level BPE tokenizer, and inference and generation through ONNX Runtime.
 */
module dev.pet.gpt2 {
    requires transitive dev.pet.api;
    requires transitive dev.pet.hf;
    requires transitive com.microsoft.onnxruntime;
    requires com.fasterxml.jackson.databind;
    requires jtokkit;
    requires ai.djl.tokenizers;
    requires transitive ai.djl.api;

    exports dev.pet.gpt2;
    exports dev.pet.gpt2.onnx;

    provides dev.pet.api.ModelProvider with dev.pet.gpt2.Gpt2Provider;
}
