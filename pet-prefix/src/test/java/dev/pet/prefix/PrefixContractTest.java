package dev.pet.prefix;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.api.PetAdapter;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PeftFiles;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Weights;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

class PrefixContractTest extends PetAdapterContract {
    private static final PeftPrefixReference REFERENCE = new PeftPrefixReference(
            Gpt2Weights.random(Gpt2Config.preset("gpt2-tiny"), TinyGpt2.SEED));

    @Override
    protected PetAdapter<?> adapter() {
        return new PrefixTuningAdapter();
    }

    @Override
    protected PretrainedModel base() {
        return TinyGpt2.BASE;
    }

    @Override
    protected float[] logits(Model model) {
        return TinyGpt2.logits(model);
    }

    @Override
    protected boolean startsAsTheBaseModel() {
        return false;
    }

    @Override
    protected Map<String, Object> config() {
        return Map.of("num_virtual_tokens", 5, "prefix_projection", true, "encoder_hidden_size", 16);
    }

    /** PEFT's saved prefix adapters hold the projected table only, so the round trip is with direct prefixes. */
    @Override
    protected Map<String, Object> peftConfig() {
        return Map.of("num_virtual_tokens", 5);
    }

    @Override
    protected long expectedTrainableCount(PretrainedModel base) {
        long h = base.anatomy().hiddenSize();
        long width = base.anatomy().layers().size() * 2L * h;
        return 5 * h + (h * 16 + 16) + (16 * width + width);
    }

    @Override
    protected List<String> names() {
        return List.of("prefix_tuning", "prefixtuning");
    }

    @Override
    protected void writeAsPeft(PetModel model, Map<String, Tensor> values, Path dir) {
        writePeftPrefix(model, values, dir);
    }

    @Override
    protected Map<String, Tensor> readAsPeft(PetModel model, Path dir) {
        return readPeftPrefix(model, dir);
    }

    @Override
    protected float[] referenceLogits(PetModel withValues) {
        return peftLogits(withValues);
    }

    /** PEFT's PREFIX_TUNING adapter: {@code prompt_embeddings} [P, layers·2·hidden] and PrefixTuningConfig fields. */
    static void writePeftPrefix(PetModel model, Map<String, Tensor> values, Path dir) {
        var a = model.base().anatomy();
        Tensor table = values.get(PrefixTuningAdapter.TABLE);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "PREFIX_TUNING");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("base_model_name_or_path", "gpt2-tiny");
        cfg.put("num_virtual_tokens", (int) table.shape()[0]);
        cfg.put("token_dim", a.hiddenSize());
        cfg.put("num_transformer_submodules", 1);
        cfg.put("num_attention_heads", a.numHeads());
        cfg.put("num_layers", a.layers().size());
        cfg.put("encoder_hidden_size", a.hiddenSize());
        cfg.put("prefix_projection", false);
        cfg.put("inference_mode", true);
        PeftFiles.write(dir, cfg, Map.of("prompt_embeddings", PeftFiles.float32(table)));
    }

    static Map<String, Tensor> readPeftPrefix(PetModel model, Path dir) {
        Map<String, Object> cfg = PeftFiles.config(dir);
        assertEquals("PREFIX_TUNING", cfg.get("peft_type"));
        Tensor t = PeftFiles.tensors(dir).get("prompt_embeddings");
        var a = model.base().anatomy();
        assertEquals(List.of(((Number) cfg.get("num_virtual_tokens")).longValue(),
                a.layers().size() * 2L * a.hiddenSize()), List.of(t.shape()[0], t.shape()[1]));
        return Map.of(PrefixTuningAdapter.TABLE, t);
    }

    /** The float64 PEFT reference on {@link TinyGpt2#IDS}, as float32 logits. */
    static float[] peftLogits(PetModel withValues) {
        Tensor table = withValues.trainableTensors().get(PrefixTuningAdapter.TABLE);
        int p = (int) table.shape()[0];
        double[] d = PeftPrefixReference.flatten(REFERENCE.logits(table.toFloatArray(), p, TinyGpt2.IDS, null, p));
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }
}
