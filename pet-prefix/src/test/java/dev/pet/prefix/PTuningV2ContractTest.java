package dev.pet.prefix;

import dev.pet.api.PetAdapter;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.testkit.PetAdapterContract;
import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** P-tuning v2 is PEFT prefix tuning without projection: the same files and the same reference. */
class PTuningV2ContractTest extends PetAdapterContract {
    @Override
    protected PetAdapter adapter() {
        return new PTuningV2Adapter();
    }

    @Override
    protected PretrainedModel base() {
        return TinyGpt2.BASE;
    }

    @Override
    protected float[] logits(Model model) {
        return PrefixFamily.GPT2.logits(model);
    }

    @Override
    protected boolean startsAsTheBaseModel() {
        return false;
    }

    @Override
    protected Map<String, Object> config() {
        return Map.of("pre_seq_len", 3);
    }

    @Override
    protected long expectedTrainableCount(PretrainedModel base) {
        return 3L * base.anatomy().layers().size() * 2 * base.anatomy().hiddenSize();
    }

    @Override
    protected List<String> names() {
        return List.of("p_tuning_v2", "ptuning2", "ptuningv2");
    }

    @Override
    protected void writeAsPeft(PetModel model, Map<String, Tensor> values, Path dir) {
        PrefixContractTest.writePeftPrefix(model, values, dir);
    }

    @Override
    protected Map<String, Tensor> readAsPeft(PetModel model, Path dir) {
        return PrefixContractTest.readPeftPrefix(model, dir);
    }

    @Override
    protected float[] referenceLogits(PetModel withValues) {
        return PrefixContractTest.peftLogits(PrefixFamily.GPT2, withValues);
    }
}
