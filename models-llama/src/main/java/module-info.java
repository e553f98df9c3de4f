/**
 * Llama-family models for PET Runtime (Llama, Mistral, Qwen2; SmolLM and TinyLlama share the shape): the forward
 * graph built as ONNX with Hugging Face names and anatomy, Hugging Face checkpoints and tokenizers, and presets.
 */
module dev.pet.llama {
    requires transitive dev.pet.api;
    requires transitive dev.pet.hf;

    exports dev.pet.llama;

    provides dev.pet.api.ModelProvider with dev.pet.llama.LlamaProvider;
}
