package dev.pet.prefix;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.pet.api.PetAdapters;
import dev.pet.api.PetException;
import dev.pet.api.PetModel;
import dev.pet.api.testkit.PeftPrefixReference;
import dev.pet.engine.CompiledGraph;
import dev.pet.engine.OrtEngine;
import dev.pet.onnx.CausalLmNames;
import dev.pet.onnx.tensor.DataType;
import dev.pet.onnx.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Prefix tuning against each family's {@link PeftPrefixReference}, an independent float64 model with PEFT's
 * semantics (prefix as past keys/values, P leading ones in the mask, real tokens at positions P..P+T-1: GPT-2's
 * learned positions, Llama's rotary angles with the prefix keys unrotated and per key/value head). Tolerance 1e-4 on
 * logits of order 1: float32 accumulation over these 64-wide, 2-layer models stays below 1e-5; a positions-from-0
 * model is off by more than 1e-2, so the check tells the two apart.
 */
class PrefixTuningTest {
    private static final double TOLERANCE = 1e-4;

    static Stream<PrefixFamily> families() {
        return PrefixFamily.all();
    }

    private static float[] table(PetModel pet) {
        var a = pet.base().anatomy();
        return PrefixTuningAdapter.promptEmbeddings((PrefixConfig) pet.config(), pet.trainableTensors(),
                a.layers().size() * 2L * PrefixTuningAdapter.tokenDim(a));
    }

    private static double maxDiff(float[] got, double[] expected) {
        assertEquals(expected.length, got.length, "logit counts");
        double d = 0;
        for (int i = 0; i < got.length; i++) {
            d = Math.max(d, Math.abs(got[i] - expected[i]));
        }
        return d;
    }

    @ParameterizedTest
    @MethodSource("families")
    void logitsMatchPeftWithRealTokensNumberedFromThePrefixLength(PrefixFamily f) {
        for (boolean projection : new boolean[] {false, true}) {
            PrefixTuningAdapter a = new PrefixTuningAdapter();
            PrefixConfig c = a.parseConfig(Map.of("pre_seq_len", 4, "prefix_projection", projection, "mid_dim", 8));
            PetModel pet = a.getPetModel(f.base(), c);
            float[] got = f.logits(pet.inferenceModel());
            float[] table = table(pet);
            double[] peft = PeftPrefixReference.flatten(f.reference().logits(table, 4, f.ids(), null, 4));
            double d = maxDiff(got, peft);
            assertTrue(d <= TOLERANCE, "projection=" + projection + ": max |pet - PEFT| = " + d);
            double[] fromZero = PeftPrefixReference.flatten(f.reference().logits(table, 4, f.ids(), null, 0));
            assertTrue(maxDiff(got, fromZero) > 1e-2, "the check must tell positions P.. from positions 0..");
        }
    }

    @ParameterizedTest
    @MethodSource("families")
    void paddedKeysAreMaskedWhileThePrefixStaysVisible(PrefixFamily f) {
        PrefixTuningAdapter a = new PrefixTuningAdapter();
        PetModel pet = a.getPetModel(f.base(), a.parseConfig(Map.of("num_virtual_tokens", 3)));
        long[] mask = {0, 0, 1, 1, 1, 0, 1, 1, 1, 1};
        float[] got = f.logits(pet.inferenceModel(), mask);
        double[] peft = PeftPrefixReference.flatten(f.reference().logits(table(pet), 3, f.ids(), mask, 3));
        double d = maxDiff(got, peft);
        assertTrue(d <= TOLERANCE, "max |pet - PEFT| = " + d);
    }

    /**
     * Generation with a key/value cache: the prefix model of the family's past/present graph runs the prompt, then
     * one token at a time against the cached real keys; every step's logits equal PEFT's for the whole sequence, so
     * the P-shift holds for cached positions too. The caller numbers real tokens from 0 (position_ids) as for the
     * base model, and the cache holds only real tokens ([batch, kvHeads, past, headDim]).
     */
    @ParameterizedTest
    @MethodSource("families")
    void cachedGenerationStepsKeepThePositionShift(PrefixFamily f) {
        PrefixTuningAdapter a = new PrefixTuningAdapter();
        int np = 5;
        PetModel pet = a.getPetModel(f.cached(), a.parseConfig(Map.of("num_virtual_tokens", np, "seed", 7)));
        long[] ids = f.ids();
        int prompt = 6;
        int vocab = (int) f.cached().vocabSize();
        double[][] peft = f.reference().logits(table(pet), np, ids, null, np);
        var anatomy = f.cached().anatomy();
        long kvHeads = anatomy.numKeyValueHeads();
        long hd = anatomy.headDim();
        int layers = anatomy.layers().size();
        try (OrtEngine e = OrtEngine.cpu(); CompiledGraph g = e.compile(pet.inferenceModel())) {
            Map<String, Tensor> past = new HashMap<>();
            for (int l = 0; l < layers; l++) {
                past.put(CausalLmNames.pastKey(l), Tensor.zeros(DataType.FLOAT, 1, kvHeads, 0, hd));
                past.put(CausalLmNames.pastValue(l), Tensor.zeros(DataType.FLOAT, 1, kvHeads, 0, hd));
            }
            int done = 0;
            while (done < ids.length) {
                int n = done == 0 ? prompt : 1;
                Map<String, Tensor> feeds = new HashMap<>(past);
                feeds.put(CausalLmNames.INPUT_IDS, Tensor.ofLongs(Arrays.copyOfRange(ids, done, done + n), 1, n));
                long[] mask = new long[done + n];
                Arrays.fill(mask, 1);
                feeds.put(CausalLmNames.ATTENTION_MASK, Tensor.ofLongs(mask, 1, done + n));
                long[] pos = new long[n];
                for (int i = 0; i < n; i++) {
                    pos[i] = done + i;
                }
                feeds.put(CausalLmNames.POSITION_IDS, Tensor.ofLongs(pos, 1, n));
                Map<String, Tensor> out = g.run(feeds);
                float[] logits = out.get(CausalLmNames.LOGITS).toFloatArray();
                for (int i = 0; i < n; i++) {
                    float[] row = Arrays.copyOfRange(logits, i * vocab, (i + 1) * vocab);
                    double d = maxDiff(row, peft[done + i]);
                    assertTrue(d <= TOLERANCE, "token " + (done + i) + ": max |cached pet - PEFT| = " + d);
                }
                for (int l = 0; l < layers; l++) {
                    Tensor k = out.get(CausalLmNames.presentKey(l));
                    assertEquals(List.of(1L, kvHeads, (long) done + n, hd), Arrays.stream(k.shape()).boxed().toList(),
                            "the cache holds only real tokens, not the prefix");
                    past.put(CausalLmNames.pastKey(l), k);
                    past.put(CausalLmNames.pastValue(l), out.get(CausalLmNames.presentValue(l)));
                }
                done += n;
            }
        }
    }

    @Test
    void aPrefixThatLeavesNoPositionsIsRefused() {
        long positions = TinyGpt2.BASE.maxPositions();
        PrefixTuningAdapter a = new PrefixTuningAdapter();
        PetException e = assertThrows(PetException.class, () -> a.getPetModel(TinyGpt2.BASE,
                a.parseConfig(Map.of("num_virtual_tokens", (int) positions))));
        assertTrue(e.getMessage().contains("num_virtual_tokens " + positions), e.getMessage());
        assertEquals(3, a.parseConfig(Map.of("num_virtual_tokens", 3)).reservedPositions());
    }

    /** A prompt-learning PeftModel has no {@code .model} level, so PEFT keys its modules_to_save base_model.X. */
    @Test
    void baseTensorsTrainedBesidePrefixesTravelAsModulesToSave(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) {
        PrefixTuningAdapter a = new PrefixTuningAdapter();
        PetModel plain = a.getPetModel(TinyGpt2.BASE, a.parseConfig(Map.of("num_virtual_tokens", 2)));
        PetModel unfrozen = PetAdapters.freezePretrainedModel(plain, java.util.List.of(),
                java.util.List.of("transformer.ln_f.bias"));
        float[] bias = new float[(int) TinyGpt2.BASE.anatomy().hiddenSize()];
        Arrays.fill(bias, 0.5f);
        PetModel trained = unfrozen.withTrainables(Map.of("transformer.ln_f.bias",
                Tensor.ofFloats(bias, bias.length)));
        a.saveAdapter(trained, trained.trainableTensors(), dir);
        assertTrue(dev.pet.api.testkit.PeftFiles.tensors(dir).containsKey("base_model.transformer.ln_f.bias"));
        assertEquals(java.util.List.of("transformer.ln_f"),
                dev.pet.api.testkit.PeftFiles.config(dir).get("modules_to_save"));
        PetModel loaded = a.loadAdapter(plain, dir);
        assertTrue(loaded.trainables().contains("transformer.ln_f.bias"));
        assertEquals(0, maxDiff(PrefixFamily.GPT2.logits(loaded.inferenceModel()),
                toDoubles(PrefixFamily.GPT2.logits(trained.inferenceModel()))));
    }

    private static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
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
