package dev.pet.api;

import dev.pet.onnx.ir.Model;
import dev.pet.onnx.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A base model with a PET algorithm's nodes injected. The trainable tensors are initializers of {@link #model()}
 * (named in {@link #trainables()}); every other initializer is frozen.
 *
 * @param base       the pretrained model it was made from (its graph is not modified)
 * @param model      the transformed forward model
 * @param trainables names of the trainable initializers, in a stable order
 * @param config     the algorithm's configuration
 */
public record PetModel(PretrainedModel base, Model model, List<String> trainables, PetConfig config) {
    public PetModel {
        Objects.requireNonNull(base, "base");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(config, "config");
        trainables = List.copyOf(trainables);
        for (String t : trainables) {
            if (model.graph().initializer(t) == null) {
                throw new PetException("trainable tensor '" + t + "' is not an initializer of the PET model");
            }
        }
    }

    /** Current values of the trainable tensors, in order. */
    public Map<String, Tensor> trainableTensors() {
        Map<String, Tensor> m = new LinkedHashMap<>();
        for (String t : trainables) {
            m.put(t, model.graph().initializer(t));
        }
        return m;
    }

    /** A copy whose trainable tensors take the given values (same names and shapes). */
    public PetModel withTrainables(Map<String, Tensor> values) {
        Model m = model.copy();
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            Tensor old = m.graph().initializer(e.getKey());
            if (old == null || !trainables.contains(e.getKey())) {
                throw new PetException("'" + e.getKey() + "' is not a trainable tensor of this PET model");
            }
            if (!java.util.Arrays.equals(old.shape(), e.getValue().shape())) {
                throw new PetException("tensor '" + e.getKey() + "' has shape " + java.util.Arrays.toString(
                        e.getValue().shape()) + ", expected " + java.util.Arrays.toString(old.shape()));
            }
            m.graph().setInitializer(e.getKey(), e.getValue().castTo(old.dataType()));
        }
        return new PetModel(base, m, trainables, config);
    }

    /**
     * The model for inference: a copy whose Dropout nodes (the algorithm's, in training mode) run in inference mode.
     */
    public Model inferenceModel() {
        Model m = model.copy();
        for (dev.pet.onnx.ir.Node n : m.graph().nodes()) {
            if (n.opType().equals("Dropout") && n.domain().isEmpty() && n.inputCount() > 2) {
                n.setInput(2, null);
            }
        }
        m.graph().removeUnused();
        return m;
    }

    /** Number of trainable parameters. */
    public long trainableParameterCount() {
        long n = 0;
        for (String t : trainables) {
            n += model.graph().initializer(t).elementCount();
        }
        return n;
    }
}
