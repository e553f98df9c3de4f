/**
 * GPT-2 for PET Runtime: the forward graph built as ONNX with Hugging Face names and anatomy (training form and the
 * Optimum with-past generation form), Hugging Face checkpoints, and the byte-level BPE tokenizer. Pure Java: running
 * the graphs is pet-engine's job.
 */
module dev.pet.gpt2 {
    requires transitive dev.pet.api;
    requires transitive dev.pet.hf;
    requires com.fasterxml.jackson.databind;
    requires jtokkit;
    requires ai.djl.tokenizers;

    exports dev.pet.gpt2;
    exports dev.pet.gpt2.onnx;

    provides dev.pet.api.ModelProvider with dev.pet.gpt2.Gpt2Provider;
}
