/**
 * What model plugins share about Hugging Face model directories and causal-LM graphs: {@code config.json} and other
 * JSON files read with limits, safetensors checkpoints (single file or sharded), {@code tokenizer.json} through
 * DJL's Hugging Face tokenizers with the special tokens of {@code tokenizer_config.json} /
 * {@code generation_config.json}, and the Optimum names and options of causal-LM graphs.
 */
module dev.pet.hf {
    requires transitive dev.pet.api;
    requires com.fasterxml.jackson.databind;
    requires ai.djl.tokenizers;

    exports dev.pet.hf;
}
