package dev.pet.gpt2.onnx;

import ai.djl.engine.Engine;
import ai.djl.inference.Predictor;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.translate.NoBatchifyTranslator;
import ai.djl.translate.TranslateException;
import ai.djl.translate.TranslatorContext;
import ai.djl.util.PairList;
import dev.pet.api.PetException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A DJL {@code Translator} for a GPT-2 ONNX model exported by PET Runtime (or any model with {@code input_ids}, an
 * optional {@code attention_mask} and a {@code logits} [1, sequence, vocab] output): token ids in, the logits of the
 * next token (the last position) out. Load it with DJL's ONNX Runtime engine:
 *
 * <pre>{@code
 * Gpt2DjlTranslator.initialiseEngine(); // before any other ONNX Runtime use in this JVM
 * Criteria<long[], float[]> c = Criteria.builder().setTypes(long[].class, float[].class)
 *         .optModelPath(onnxFile).optEngine("OnnxRuntime").optTranslator(new Gpt2DjlTranslator()).build();
 * try (ZooModel<long[], float[]> m = c.loadModel(); Predictor<long[], float[]> p = m.newPredictor()) {
 *     long[] generated = Gpt2DjlTranslator.generateGreedy(p, prompt, 20, 50256);
 * }
 * }</pre>
 *
 * <p>DJL's engine creates ONNX Runtime's environment with a global thread pool, which ONNX Runtime refuses once
 * any environment exists: initialise it ({@link #initialiseEngine()}) before PET Runtime or anything else opens an
 * ONNX Runtime session in the same JVM.
 *
 * <p>Only plain NDArray creation and {@code toFloatArray} are used, so DJL's ONNX Runtime engine needs no second
 * engine for array operations.
 */
public final class Gpt2DjlTranslator implements NoBatchifyTranslator<long[], float[]> {
    /** DJL switches: no usage tracking, no downloads, no PyTorch engine as a fallback for array operations. */
    private static final List<String> OFFLINE_SWITCHES = List.of("OPT_OUT_TRACKING", "offline",
            "ai.djl.onnx.disable_alternative");
    private List<String> inputs = List.of("input_ids", "attention_mask");

    /**
     * Sets DJL's switches that forbid downloads and usage tracking (unless already set); call before DJL's classes
     * initialise.
     */
    public static synchronized void configureOffline() {
        for (String s : OFFLINE_SWITCHES) {
            if (System.getProperty(s) == null) {
                System.setProperty(s, "true");
            }
        }
    }

    /**
     * {@link #configureOffline()} and starts DJL's ONNX Runtime engine; fails with an explanation when another ONNX
     * Runtime environment was created first.
     */
    public static void initialiseEngine() {
        configureOffline();
        try {
            Engine.getEngine("OnnxRuntime");
        } catch (RuntimeException | LinkageError e) {
            throw new PetException("DJL's ONNX Runtime engine could not start (" + e
                    + "). It must be initialised before any other ONNX Runtime environment exists in this JVM, "
                    + "because it installs a global thread pool; and ai.djl.onnxruntime:onnxruntime-engine must be "
                    + "on the class path", e);
        }
    }

    @Override
    public void prepare(TranslatorContext ctx) {
        PairList<String, Shape> described = ctx.getModel().describeInput();
        if (described == null || described.isEmpty()) {
            return;
        }
        List<String> names = new ArrayList<>(described.keys());
        if (!names.contains("input_ids")) {
            throw new PetException("model '" + ctx.getModel().getName() + "' has no 'input_ids' input; found "
                    + names);
        }
        for (String n : names) {
            if (!n.equals("input_ids") && !n.equals("attention_mask")) {
                throw new PetException("model '" + ctx.getModel().getName() + "' needs input '" + n
                        + "', which this translator does not feed (expected input_ids and optional attention_mask;"
                        + " export the graph without a KV cache)");
            }
        }
        inputs = List.copyOf(names);
    }

    @Override
    public NDList processInput(TranslatorContext ctx, long[] ids) {
        Objects.requireNonNull(ids, "ids");
        if (ids.length == 0) {
            throw new PetException("input_ids: expected at least one token, found 0");
        }
        NDManager m = ctx.getNDManager();
        NDList list = new NDList();
        for (String name : inputs) {
            long[] data = name.equals("input_ids") ? ids : filled(ids.length);
            NDArray a = m.create(data, new Shape(1, ids.length));
            a.setName(name);
            list.add(a);
        }
        return list;
    }

    private static long[] filled(int n) {
        long[] ones = new long[n];
        Arrays.fill(ones, 1L);
        return ones;
    }

    @Override
    public float[] processOutput(TranslatorContext ctx, NDList list) {
        NDArray logits = list.get("logits");
        if (logits == null) {
            logits = list.get(0);
        }
        Shape s = logits.getShape();
        if (s.dimension() != 3 || s.get(0) != 1) {
            throw new PetException("logits: expected shape [1, sequence, vocab], found " + s);
        }
        int seq = Math.toIntExact(s.get(1));
        int vocab = Math.toIntExact(s.get(2));
        float[] all = logits.toFloatArray();
        return Arrays.copyOfRange(all, (seq - 1) * vocab, seq * vocab);
    }

    /**
     * Greedy generation through a predictor built with this translator, recomputing the whole sequence per token
     * (the graph has no KV cache). Stops after {@code maxNewTokens} or at {@code eosTokenId} (included).
     */
    public static long[] generateGreedy(Predictor<long[], float[]> predictor, long[] prompt, int maxNewTokens,
            long eosTokenId) {
        Objects.requireNonNull(predictor, "predictor");
        Objects.requireNonNull(prompt, "prompt");
        if (maxNewTokens < 0) {
            throw new PetException("maxNewTokens: expected >= 0, found " + maxNewTokens);
        }
        long[] seq = prompt.clone();
        for (int step = 0; step < maxNewTokens; step++) {
            float[] next;
            try {
                next = predictor.predict(seq);
            } catch (TranslateException e) {
                throw new PetException("DJL prediction failed at generated token " + step + ": " + e.getMessage(), e);
            }
            int best = 0;
            for (int v = 1; v < next.length; v++) {
                if (next[v] > next[best]) {
                    best = v;
                }
            }
            seq = Arrays.copyOf(seq, seq.length + 1);
            seq[seq.length - 1] = best;
            if (best == eosTokenId) {
                break;
            }
        }
        return Arrays.copyOfRange(seq, prompt.length, seq.length);
    }
}
