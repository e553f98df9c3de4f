package dev.pet.prefix;

import dev.pet.api.PetAdapters;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Graph;
import dev.pet.gpt2.Gpt2Weights;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prefix tuning checked against an independent route: PEFT implements it by feeding the prefixes as GPT-2's
 * past_key_values, so our injected graph must give the logits of the KV-cache graph fed those prefixes as the past
 * (with positions starting at 0 and an all-ones mask over prefix and input).
 */
class PrefixTuningTest {
    @Test
    void injectedPrefixesEqualFeedingThemAsPastKeyValues() {
        for (boolean projection : new boolean[] {false, true}) {
            PrefixTuningAdapter a = new PrefixTuningAdapter();
            PrefixConfig c = a.parseConfig(Map.of("pre_seq_len", 4, "prefix_projection", projection, "mid_dim", 8));
            PetModel pet = a.getPetModel(TinyGpt2.BASE, c);
            float[] got = TinyGpt2.logits(pet.inferenceModel());

            var anatomy = TinyGpt2.BASE.anatomy();
            int layers = anatomy.layers().size();
            int heads = (int) anatomy.numHeads();
            int d = (int) anatomy.headDim();
            long width = layers * 2L * anatomy.hiddenSize();
            float[] table = PrefixTuningAdapter.promptEmbeddings(c, pet.trainableTensors(), width);
            Gpt2Weights w = Gpt2Weights.random(Gpt2Config.preset("gpt2-tiny"), TinyGpt2.SEED);
            Gpt2Graph cache = Gpt2Graph.build(w, CausalLmGraphOptions.inference());
            Map<String, Tensor> feeds = new HashMap<>();
            int s = TinyGpt2.IDS.length;
            feeds.put(Gpt2Graph.INPUT_IDS, Tensor.ofLongs(TinyGpt2.IDS, 1, s));
            long[] mask = new long[4 + s];
            Arrays.fill(mask, 1);
            feeds.put(Gpt2Graph.ATTENTION_MASK, Tensor.ofLongs(mask, 1, 4 + s));
            long[] pos = new long[s];
            for (int i = 0; i < s; i++) {
                pos[i] = i;
            }
            feeds.put(Gpt2Graph.POSITION_IDS, Tensor.ofLongs(pos, 1, s));
            for (int l = 0; l < layers; l++) {
                for (int kv = 0; kv < 2; kv++) {
                    float[] past = new float[heads * 4 * d];
                    for (int h = 0; h < heads; h++) {
                        for (int p = 0; p < 4; p++) {
                            for (int j = 0; j < d; j++) {
                                // table row p, column ((2l + kv) * heads + h) * d + j, as PEFT lays it out
                                past[(h * 4 + p) * d + j] = table[(int) (p * width + ((2L * l + kv) * heads + h) * d
                                        + j)];
                            }
                        }
                    }
                    feeds.put(kv == 0 ? Gpt2Graph.pastKey(l) : Gpt2Graph.pastValue(l),
                            Tensor.ofFloats(past, 1, heads, 4, d));
                }
            }
            float[] expected;
            try (OrtEngine e = OrtEngine.cpu(); CompiledGraph g = e.compile(cache.model())) {
                expected = g.run(feeds).get(Gpt2Graph.LOGITS).toFloatArray();
            }
            double diff = 0;
            for (int i = 0; i < got.length; i++) {
                diff = Math.max(diff, Math.abs(got[i] - expected[i]));
            }
            assertTrue(diff <= 1e-4, "projection=" + projection + ": max |prefix - past_key_values| = " + diff);
        }
    }

    @Test
    void pTuningV2IsDirectPrefixesOnly() {
        PetAdapters reg = PetAdapters.discover(getClass().getClassLoader());
        assertTrue(reg.adapter("ptuning2") instanceof PTuningV2Adapter);
        PetException e = assertThrows(PetException.class,
                () -> new PTuningV2Adapter().parseConfig(Map.of("prefix_projection", true)));
        assertTrue(e.getMessage().contains("prefix_projection"), e.getMessage());
        PetModel m = new PTuningV2Adapter().getPetModel(TinyGpt2.BASE,
                new PTuningV2Adapter().parseConfig(Map.of("num_virtual_tokens", 3)));
        assertEquals(3L * 2 * 2 * 64, m.trainableParameterCount());
    }
}
