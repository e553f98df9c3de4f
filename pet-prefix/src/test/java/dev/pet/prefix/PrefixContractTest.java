package dev.pet.prefix;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.pet.api.PetAdapter;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PeftFiles;
import dev.pet.api.testkit.PeftPrefixReference;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Prefix tuning on GPT-2; {@link LlamaPrefixContractTest} runs the same kit on a grouped-query Llama. */
class PrefixContractTest extends PetAdapterContract {
    protected PrefixFamily family() {
        return PrefixFamily.GPT2;
    }

    @Override
    protected PetAdapter<?> adapter() {
        return new PrefixTuningAdapter();
    }

    @Override
    protected PretrainedModel base() {
        return family().base();
    }

    @Override
    protected float[] logits(Model model) {
        return family().logits(model);
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
        long width = base.anatomy().layers().size() * 2L * PrefixTuningAdapter.tokenDim(base.anatomy());
        long kv = PrefixTuningAdapter.tokenDim(base.anatomy());
        return 5 * kv + (kv * 16 + 16) + (16 * width + width);
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
        return peftLogits(family(), withValues);
    }

    /**
     * PEFT's PREFIX_TUNING adapter: {@code prompt_embeddings} [P, layers·2·token_dim] and PrefixTuningConfig fields;
     * PEFT's {@code token_dim} and {@code num_attention_heads} are the key/value width and heads (GQA-aware).
     */
    static void writePeftPrefix(PetModel model, Map<String, Tensor> values, Path dir) {
        var a = model.base().anatomy();
        Tensor table = values.get(PrefixTuningAdapter.TABLE);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("peft_type", "PREFIX_TUNING");
        cfg.put("task_type", "CAUSAL_LM");
        cfg.put("base_model_name_or_path", model.base().name());
        cfg.put("num_virtual_tokens", (int) table.shape()[0]);
        cfg.put("token_dim", a.numKeyValueHeads() * a.headDim());
        cfg.put("num_transformer_submodules", 1);
        cfg.put("num_attention_heads", a.numKeyValueHeads());
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
                a.layers().size() * 2L * a.numKeyValueHeads() * a.headDim()), List.of(t.shape()[0], t.shape()[1]));
        return Map.of(PrefixTuningAdapter.TABLE, t);
    }

    /** The family's float64 PEFT reference on its fixed input, as float32 logits. */
    static float[] peftLogits(PrefixFamily family, PetModel withValues) {
        Tensor table = withValues.trainableTensors().get(PrefixTuningAdapter.TABLE);
        int p = (int) table.shape()[0];
        double[] d = PeftPrefixReference.flatten(family.reference().logits(table.toFloatArray(), p, family.ids(),
                null, p));
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
    }
}
