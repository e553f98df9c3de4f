package dev.pet.prefix;

import dev.pet.api.ModelRequest;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PeftPrefixReference;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.NaiveGpt2;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.onnx.CausalLmNames;
import dev.pet.llama.LlamaProvider;
import dev.pet.llama.NaiveLlama;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.util.Arrays;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A tiny base model of one family in its training form and its KV-cache (generation) form, with the family's
 * independent float64 PEFT prefix reference and a fixed input, so prefix tests run unchanged on every family.
 *
 * @param name      for test names
 * @param base      training form (input_ids, attention_mask → logits)
 * @param cached    generation form (position_ids and past_key_values in, present out)
 * @param reference what PEFT + transformers compute
 * @param ids       a fixed input inside the vocabulary
 */
record PrefixFamily(String name, PretrainedModel base, PretrainedModel cached, PeftPrefixReference reference,
        long[] ids) {
    private static final OrtEngine ENGINE = OrtEngine.cpu();
    static final PrefixFamily GPT2 = gpt2();
    static final PrefixFamily LLAMA = llama();

    private static PrefixFamily gpt2() {
        ModelRequest r = new ModelRequest("gpt2-tiny", Map.of(), TinyGpt2.SEED);
        return new PrefixFamily("gpt2", TinyGpt2.BASE, new Gpt2Provider().load(r.withForm(
                ModelRequest.GraphForm.GENERATION)), new NaiveGpt2(Gpt2Provider.loadWeights(r)), TinyGpt2.IDS);
    }

    /**
     * llama-tiny (grouped-query attention: 4 heads, 2 key/value heads) with weights ten times the preset's scale, so
     * attention is far from uniform and the rotary positions of the real tokens change the logits visibly.
     */
    private static PrefixFamily llama() {
        ModelRequest r = new ModelRequest("llama-tiny", Map.of("initializer_range", 0.2), TinyGpt2.SEED);
        LlamaProvider p = new LlamaProvider();
        return new PrefixFamily("llama", p.load(r), p.load(r.withForm(ModelRequest.GraphForm.GENERATION)),
                new NaiveLlama(LlamaProvider.loadWeights(r)), new long[] {72, 101, 108, 108, 111, 44, 32, 256, 17, 9});
    }

    static Stream<PrefixFamily> all() {
        return Stream.of(GPT2, LLAMA);
    }

    /** Logits of a training-form model on {@link #ids}, flattened. */
    float[] logits(Model m) {
        return logits(m, null);
    }

    /** Logits of a training-form model on {@link #ids} under this mask (null: all ones), flattened. */
    float[] logits(Model m, long[] mask) {
        long[] attend = mask;
        if (attend == null) {
            attend = new long[ids.length];
            Arrays.fill(attend, 1);
        }
        try (CompiledGraph g = ENGINE.compile(m)) {
            return g.run(Map.of(CausalLmNames.INPUT_IDS, Tensor.ofLongs(ids, 1, ids.length),
                    CausalLmNames.ATTENTION_MASK, Tensor.ofLongs(attend, 1, attend.length)))
                    .get(CausalLmNames.LOGITS).toFloatArray();
        }
    }

    @Override
    public String toString() {
        return name;
    }
}
