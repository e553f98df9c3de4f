package dev.pet.api.onnximport;

import dev.pet.onnx.build.ShapeInference;
import dev.pet.onnx.ir.Node;
import dev.pet.onnx.ir.TensorType;
import dev.pet.onnx.ir.Value;
import dev.pet.onnx.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The attention walk: from the input of a block's attention output projection back through reshapes to the
 * context {@code MatMul(probabilities, values)}, its {@code Softmax}, the mask steps ({@code Add} of a bias,
 * {@code Where} of a boolean mask) between Softmax and the scores, the score {@code MatMul(query, keyᵀ)} behind an
 * optional scale, and the {@code Transpose(perm=[0,1,3,2])} that makes keyᵀ. Nothing is changed in the graph; what
 * is not found is listed with why, by anatomy part ({@code key}, {@code value}, {@code attention_bias}).
 */
final class AttentionWalk {
    private static final int MAX_WALK = 12;
    private static final long[] KEY_TRANSPOSE = {0, 1, 3, 2};

    /** Where keys or values enter attention: input {@code index} of {@code reader}. */
    record Site(Node reader, int index) {
        Value value() {
            return reader.input(index);
        }
    }

    /** One step between the attention scores and Softmax: an additive term or a Where mask. */
    record MaskStep(Node node, int scoreInput) {
    }

    /**
     * What the walk found; null fields were not found, with the reasons in {@code missing}.
     *
     * @param context      MatMul(probabilities, values)
     * @param softmax      the Softmax over the scores
     * @param maskSteps    Add / Where steps from Softmax back to the scores, nearest to Softmax first
     * @param scores       the value the mask steps start from (the scaled scores)
     * @param keyTranspose Transpose(perm=[0,1,3,2]) producing keyᵀ
     * @param heads        attention heads read from the key's type or reshape, or null
     * @param headDim      head width read from the score scale (1/√d), or null
     * @param missing      anatomy part → why it was not found
     */
    record Core(Node context, Node softmax, List<MaskStep> maskSteps, Value scores, Node keyTranspose, Site key,
            Site value, Long kvHeads, Long repeats, Long heads, Long headDim, Map<String, String> missing) {
    }

    private Node context;
    private Node softmax;
    private final List<MaskStep> steps = new ArrayList<>();
    private Value scores;
    private Node keyTranspose;
    private Site key;
    private Site value;
    private Long kvHeads;
    private Long repeats;
    private Long heads;
    private Long headDim;
    private final Map<String, String> missing = new LinkedHashMap<>();

    private AttentionWalk() {
    }

    /** Walks back from {@code projectionInput}, the input of the attention output projection. */
    static Core from(Value projectionInput) {
        AttentionWalk w = new AttentionWalk();
        w.walk(projectionInput);
        return new Core(w.context, w.softmax, List.copyOf(w.steps), w.scores, w.keyTranspose, w.key, w.value,
                w.kvHeads, w.repeats, w.heads, w.headDim, w.missing);
    }

    static boolean isConst(Value v) {
        return ShapeInference.constantValue(v) != null;
    }

    private static Node back(Value from, Set<String> through, String target) {
        Value cur = from;
        for (int step = 0; step < MAX_WALK && cur != null && cur.producer() != null; step++) {
            Node p = cur.producer();
            if (p.opType().equals(target) && (!target.equals("MatMul") || !isConst(p.input(0))
                    && !isConst(p.input(1)))) {
                return p;
            }
            if (!through.contains(p.opType())) {
                return null;
            }
            cur = p.input(0);
        }
        return null;
    }

    private void walk(Value projectionInput) {
        context = back(projectionInput, Set.of("Reshape", "Transpose", "Identity", "Cast"), "MatMul");
        if (context == null) {
            for (String p : List.of("key", "value", "attention_bias")) {
                missing.put(p, "no MatMul(probabilities, values) behind the input of the attention output "
                        + "projection");
            }
            return;
        }
        value = unrepeated(new Site(context, 1));
        softmax = back(context.input(0), Set.of("Cast", "Dropout", "Identity"), "Softmax");
        if (softmax == null) {
            missing.put("key", "no Softmax feeding " + context.describe());
            missing.put("attention_bias", "no Softmax feeding " + context.describe());
            return;
        }
        Value x = softmax.input(0);
        for (int step = 0; step < MAX_WALK && x.producer() != null; step++) {
            Node p = x.producer();
            int k = switch (p.opType()) {
                case "Add" -> scoreInput(p, 0, 1);
                case "Where" -> scoreInput(p, 1, 2);
                default -> -1;
            };
            if (k < 0) {
                break;
            }
            steps.add(new MaskStep(p, k));
            x = p.input(k);
        }
        scores = x;
        if (steps.isEmpty()) {
            missing.put("attention_bias", "no Add or Where mask between the attention scores and "
                    + softmax.describe() + " (a graph without a causal mask is no decoder)");
        }
        Node score = scoreMatMul(x);
        if (score == null) {
            missing.put("key", "no score MatMul(query, keyᵀ) behind " + softmax.describe());
            return;
        }
        keyTranspose = keyTranspose(score);
        if (keyTranspose != null) {
            recordHeads(keyTranspose.input(0));
            key = unrepeated(new Site(keyTranspose, 0));
        }
    }

    /**
     * The site before Hugging Face's {@code repeat_kv} ({@code x[:, :, None].expand(...).reshape(b, kvH·n, t, d)},
     * exported as Unsqueeze(axis 2) → Expand → Reshape) when {@code site} reads its result, else {@code site}: PET
     * methods extend the [batch, kvHeads, keys, headDim] keys and values, as the family's own graph names them.
     */
    private Site unrepeated(Site site) {
        Node reshape = site.value().producer();
        if (reshape == null || !reshape.opType().equals("Reshape")) {
            return site;
        }
        Node expand = reshape.input(0).producer();
        if (expand == null || !expand.opType().equals("Expand")) {
            return site;
        }
        Node unsqueeze = expand.input(0).producer();
        if (unsqueeze == null || !unsqueeze.opType().equals("Unsqueeze")) {
            return site;
        }
        long[] axes = unsqueeze.inputCount() > 1 ? ShapeInference.constantInts(unsqueeze.input(1))
                : unsqueeze.intsAttr("axes", null);
        if (axes == null || axes.length != 1 || axes[0] != 2) {
            return site;
        }
        TensorType t = unsqueeze.input(0).type();
        if (t.hasRank() && t.rank() == 4 && t.dims().get(1).isFixed()) {
            kvHeads = t.dims().get(1).value();
        }
        // The expand shape [batch, kvHeads, n_rep, keys, headDim], constant or concatenated from pieces.
        long[] shape = ShapeInference.constantInts(expand.input(1));
        Node concat = expand.input(1).producer();
        if (shape != null && shape.length == 5) {
            repeats = shape[2];
        } else if (concat != null && concat.opType().equals("Concat") && concat.inputCount() == 5) {
            long[] n = ShapeInference.constantInts(concat.input(2));
            repeats = n != null && n.length == 1 ? n[0] : null;
        }
        return new Site(unsqueeze, 0);
    }

    private Node scoreMatMul(Value x) {
        Value y = x;
        for (int step = 0; step < MAX_WALK && y.producer() != null; step++) {
            Node p = y.producer();
            if (p.opType().equals("MatMul") && !isConst(p.input(0)) && !isConst(p.input(1))) {
                return p;
            }
            if ((p.opType().equals("Div") || p.opType().equals("Mul")) && isConst(p.input(1))) {
                Tensor c = ShapeInference.constantValue(p.input(1));
                if (c.elementCount() == 1 && headDim == null) {
                    double s = c.toDoubleArray()[0];
                    double hd = p.opType().equals("Div") ? s * s : 1.0 / (s * s);
                    if (Math.abs(hd - Math.rint(hd)) < 1e-3 && hd >= 1) {
                        headDim = Math.round(hd);
                    }
                }
                y = p.input(0);
            } else if (p.opType().equals("Mul") && isConst(p.input(0))) {
                y = p.input(1);
            } else if (p.opType().equals("Cast")) {
                y = p.input(0);
            } else {
                return null;
            }
        }
        return null;
    }

    private Node keyTranspose(Node score) {
        Value kt = score.input(1);
        for (int step = 0; step < MAX_WALK && kt.producer() != null; step++) {
            Node p = kt.producer();
            if (p.opType().equals("Transpose") && Arrays.equals(p.intsAttr("perm", null), KEY_TRANSPOSE)) {
                return p;
            }
            if ((p.opType().equals("Mul") || p.opType().equals("Div")) && isConst(p.input(1))) {
                kt = p.input(0);
            } else {
                break;
            }
        }
        Node p = score.input(1).producer();
        missing.put("key", "the second input of " + score.describe() + " is not a Transpose(perm=[0,1,3,2]) of "
                + "[batch, heads, keys, headDim] keys (found " + (p == null ? "a graph input" : p.describe())
                + "); keys stored pre-transposed cannot be extended by a prefix");
        return null;
    }

    private void recordHeads(Value key) {
        TensorType t = key.type();
        if (t.hasRank() && t.rank() == 4 && t.dims().get(1).isFixed()) {
            heads = t.dims().get(1).value();
            return;
        }
        Node tr = key.producer();
        if (tr == null || !tr.opType().equals("Transpose")
                || !Arrays.equals(tr.intsAttr("perm", null), new long[] {0, 2, 1, 3})) {
            return;
        }
        Node reshape = tr.input(0).producer();
        if (reshape == null || !reshape.opType().equals("Reshape")) {
            return;
        }
        long[] shape = ShapeInference.constantInts(reshape.input(1));
        if (shape != null && shape.length == 4 && shape[2] > 0) {
            heads = shape[2];
            return;
        }
        Node concat = reshape.input(1).producer();
        if (concat != null && concat.opType().equals("Concat") && concat.inputCount() == 4) {
            long[] h = ShapeInference.constantInts(concat.input(2));
            if (h != null && h.length == 1 && h[0] > 0) {
                heads = h[0];
            }
        }
    }

    /** Which of inputs a/c of {@code p} carries the attention scores, or -1. */
    private static int scoreInput(Node p, int a, int c) {
        boolean sa = isScorePath(p.input(a), 0);
        boolean sc = isScorePath(p.input(c), 0);
        return sa == sc ? -1 : sa ? a : c;
    }

    private static boolean isScorePath(Value v, int depth) {
        if (v == null || depth > 8 || v.producer() == null) {
            return false;
        }
        Node p = v.producer();
        return switch (p.opType()) {
            case "MatMul" -> !isConst(p.input(0)) && !isConst(p.input(1));
            case "Div", "Mul", "Add", "Sub" -> (!isConst(p.input(0)) && isScorePath(p.input(0), depth + 1))
                    || (!isConst(p.input(1)) && isScorePath(p.input(1), depth + 1));
            case "Where" -> isScorePath(p.input(1), depth + 1) || isScorePath(p.input(2), depth + 1);
            case "Cast", "Identity" -> isScorePath(p.input(0), depth + 1);
            default -> false;
        };
    }
}
