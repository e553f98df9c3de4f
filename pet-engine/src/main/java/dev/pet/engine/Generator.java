package dev.pet.engine;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.pet.onnx.CausalLmNames;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Text generation with a key/value cache over any causal LM graph that follows the Hugging Face Optimum convention
 * ({@code decoder_model_merged} / "with past"): inputs {@code input_ids} [batch, sequence], {@code attention_mask}
 * [batch, past + sequence], {@code position_ids} [batch, sequence] (optional), {@code past_key_values.{i}.key/value}
 * [batch, kv_heads, past, head_dim]; outputs {@code logits} [batch, sequence, vocab] and
 * {@code present.{i}.key/value}. The prompt runs once, then each new token runs alone against the cached keys and
 * values, so the cost per token does not grow with the sequence beyond attention itself.
 *
 * <p>Prompts of different lengths run as one batch, padded on the left (mask 0, positions counted from each row's
 * first real token); each row has its own {@link Sampler}, so a prompt gives the same tokens alone or in a batch.
 * The cache stays in ONNX Runtime tensors between steps (never copied to the heap). A graph without past inputs (an
 * imported export without a cache) also works, recomputing the whole sequence per token. A generator holds no per-call
 * state: concurrent calls on one graph are safe (ONNX Runtime sessions run concurrently).
 */
public final class Generator {
    private final CompiledGraph graph;
    private final long maxPositions;
    private final int layers;
    private final long kvHeads;
    private final long headDim;
    private final OnnxJavaType kvType;
    private final boolean mask;
    private final boolean positions;
    private final long vocab;
    private final Set<String> outputs;

    /** Receives each new token as it is chosen; returning false stops that row (a stop string, a closed client). */
    @FunctionalInterface
    public interface TokenSink {
        boolean accept(int row, long token);

        /** A sink that keeps every row going. */
        static TokenSink none() {
            return (row, token) -> true;
        }
    }

    /**
     * @param graph        a compiled with-past graph (see the class comment)
     * @param maxPositions longest sequence (prompt plus generated) the model accepts
     */
    public Generator(CompiledGraph graph, long maxPositions) {
        this.graph = Objects.requireNonNull(graph, "graph");
        if (maxPositions < 1) {
            throw new EngineException("maxPositions: expected >= 1, found " + maxPositions);
        }
        this.maxPositions = maxPositions;
        List<String> in = graph.inputNames();
        int n = 0;
        while (in.contains(CausalLmNames.pastKey(n))) {
            n++;
        }
        if (!in.contains(CausalLmNames.INPUT_IDS) || !graph.outputNames().contains(CausalLmNames.LOGITS)) {
            throw new EngineException("graph '" + graph.name() + "' is not a causal LM graph: expected input "
                    + "input_ids (and past_key_values.{i}.key/value for a cache) and output logits (Optimum naming), "
                    + "found inputs " + in + " and outputs " + graph.outputNames());
        }
        this.layers = n;
        Set<String> expected = new LinkedHashSet<>(List.of(CausalLmNames.INPUT_IDS));
        Set<String> wanted = new LinkedHashSet<>(List.of(CausalLmNames.LOGITS));
        for (int i = 0; i < n; i++) {
            expected.add(CausalLmNames.pastKey(i));
            expected.add(CausalLmNames.pastValue(i));
            wanted.add(CausalLmNames.presentKey(i));
            wanted.add(CausalLmNames.presentValue(i));
        }
        this.mask = in.contains(CausalLmNames.ATTENTION_MASK);
        this.positions = in.contains(CausalLmNames.POSITION_IDS);
        if (mask) {
            expected.add(CausalLmNames.ATTENTION_MASK);
        }
        if (positions) {
            expected.add(CausalLmNames.POSITION_IDS);
        }
        List<String> other = new ArrayList<>(in);
        other.removeAll(expected);
        if (!other.isEmpty()) {
            throw new EngineException("graph '" + graph.name() + "' has inputs " + other + " that generation does "
                    + "not know how to feed");
        }
        for (String o : wanted) {
            graph.outputInfo(o);
        }
        this.outputs = Set.copyOf(wanted);
        long[] logitsShape = graph.outputInfo(CausalLmNames.LOGITS).getShape();
        this.vocab = logitsShape.length == 3 ? logitsShape[2] : -1;
        if (n == 0) {
            // A graph without a cache (an imported export without past inputs): every step recomputes.
            this.kvHeads = 0;
            this.headDim = 0;
            this.kvType = OnnxJavaType.FLOAT;
            return;
        }
        TensorInfo kv = graph.inputInfo(CausalLmNames.pastKey(0));
        long[] shape = kv.getShape();
        if (shape.length != 4 || shape[1] < 1 || shape[3] < 1) {
            throw new EngineException("graph '" + graph.name() + "' input " + CausalLmNames.pastKey(0)
                    + ": expected shape [batch, kv_heads, past, head_dim] with static kv_heads and head_dim, found "
                    + Arrays.toString(shape));
        }
        this.kvHeads = shape[1];
        this.headDim = shape[3];
        this.kvType = kv.type;
        if (kvType != OnnxJavaType.FLOAT && kvType != OnnxJavaType.DOUBLE) {
            throw new EngineException("graph '" + graph.name() + "': key/value cache of type " + kvType
                    + " is not supported; expected float or double");
        }
    }

    /** Number of decoder layers found in the graph's past inputs; 0 when the graph has no cache. */
    public int layers() {
        return layers;
    }

    public long maxPositions() {
        return maxPositions;
    }

    /** Generates a continuation of one prompt (the prompt not included). */
    public long[] generate(long[] prompt, GenerationConfig config) {
        return generate(List.of(prompt), config, null, TokenSink.none()).get(0);
    }

    /**
     * Generates continuations of several prompts as one batch.
     *
     * @param adapter an ONNX Runtime adapter to activate for every step, or null for the graph as it is
     * @param sink    sees each token as it is chosen (not the end-of-sequence token)
     * @return per prompt, the generated tokens (the end-of-sequence token not included)
     */
    public List<long[]> generate(List<long[]> prompts, GenerationConfig config, OrtAdapter adapter, TokenSink sink) {
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(sink, "sink");
        int batch = checkPrompts(prompts, config);
        int longest = prompts.stream().mapToInt(p -> p.length).max().orElseThrow();
        int[] pads = new int[batch];
        long[][] history = new long[batch][];
        int[] length = new int[batch];
        Sampler[] samplers = new Sampler[batch];
        boolean[] done = new boolean[batch];
        for (int r = 0; r < batch; r++) {
            long[] p = prompts.get(r);
            pads[r] = longest - p.length;
            history[r] = Arrays.copyOf(p, p.length + config.maxNewTokens());
            length[r] = p.length;
            samplers[r] = new Sampler(config);
        }
        if (config.maxNewTokens() == 0) {
            return results(history, length, prompts);
        }
        if (layers == 0) {
            List<long[]> out = new ArrayList<>();
            for (int r = 0; r < batch; r++) {
                int row = r;
                out.add(recompute(prompts.get(r), config, adapter, t -> sink.accept(row, t)));
            }
            return out;
        }
        OrtSession.RunOptions runOptions = adapter == null ? null : adapter.runOptions();
        OrtSession.Result previous = null;
        try {
            // The prompt step: left-padded ids, mask 0 over padding, empty past.
            long[] ids = new long[batch * longest];
            long[] maskRow = new long[batch * longest];
            long[] pos = new long[batch * longest];
            for (int r = 0; r < batch; r++) {
                long[] p = prompts.get(r);
                for (int s = 0; s < longest; s++) {
                    int k = s - pads[r];
                    ids[r * longest + s] = k >= 0 ? p[k] : 0;
                    maskRow[r * longest + s] = k >= 0 ? 1 : 0;
                    pos[r * longest + s] = Math.max(k, 0);
                }
            }
            long[] fullMask = maskRow;
            int total = longest;
            int step = 0;
            int seq = longest;
            while (true) {
                OrtSession.Result result = run(ids, seq, fullMask, total, pos, batch, previous, runOptions);
                if (previous != null) {
                    previous.close();
                }
                previous = result;
                float[][] last = lastLogits(result, batch, seq);
                long[] next = new long[batch];
                boolean any = false;
                for (int r = 0; r < batch; r++) {
                    if (done[r]) {
                        next[r] = history[r][length[r] - 1];
                        continue;
                    }
                    long t = samplers[r].next(last[r], history[r], length[r]);
                    next[r] = t;
                    if (t == config.eosTokenId()) {
                        done[r] = true;
                        continue;
                    }
                    history[r][length[r]++] = t;
                    if (!sink.accept(r, t) || length[r] - prompts.get(r).length == config.maxNewTokens()) {
                        done[r] = true;
                    }
                    any |= !done[r];
                }
                step++;
                if (!any || longest + step >= maxPositions) {
                    break;
                }
                // The next step: one token per row against the cache.
                seq = 1;
                total = longest + step;
                ids = next;
                fullMask = new long[batch * total];
                pos = new long[batch];
                for (int r = 0; r < batch; r++) {
                    for (int s = 0; s < total; s++) {
                        fullMask[r * total + s] = s < pads[r] ? 0 : 1;
                    }
                    pos[r] = total - 1 - pads[r];
                }
            }
        } finally {
            if (previous != null) {
                previous.close();
            }
            if (runOptions != null) {
                runOptions.close();
            }
        }
        return results(history, length, prompts);
    }

    /**
     * The same tokens as {@link #generate(long[], GenerationConfig)}, recomputing the whole sequence at every step
     * with an empty cache: slow, and the reference the cached path is tested and measured against.
     */
    public long[] generateWithoutCache(long[] prompt, GenerationConfig config) {
        checkPrompts(List.of(prompt), config);
        return recompute(prompt, config, null, t -> true);
    }

    private long[] recompute(long[] prompt, GenerationConfig config, OrtAdapter adapter,
            java.util.function.LongPredicate sink) {
        Sampler sampler = new Sampler(config);
        long[] seq = Arrays.copyOf(prompt, prompt.length + config.maxNewTokens());
        int len = prompt.length;
        OrtSession.RunOptions runOptions = adapter == null ? null : adapter.runOptions();
        try {
            while (len - prompt.length < config.maxNewTokens() && len < maxPositions) {
                long[] mask = new long[len];
                long[] pos = new long[len];
                for (int i = 0; i < len; i++) {
                    mask[i] = 1;
                    pos[i] = i;
                }
                long next;
                try (OrtSession.Result r = run(Arrays.copyOf(seq, len), len, mask, len, pos, 1, null, runOptions)) {
                    next = sampler.next(lastLogits(r, 1, len)[0], seq, len);
                }
                if (next == config.eosTokenId()) {
                    break;
                }
                seq[len++] = next;
                if (!sink.test(next)) {
                    break;
                }
            }
        } finally {
            if (runOptions != null) {
                runOptions.close();
            }
        }
        return Arrays.copyOfRange(seq, prompt.length, len);
    }

    private int checkPrompts(List<long[]> prompts, GenerationConfig config) {
        Objects.requireNonNull(prompts, "prompts");
        Objects.requireNonNull(config, "config");
        if (prompts.isEmpty()) {
            throw new EngineException("generation needs at least one prompt");
        }
        for (int r = 0; r < prompts.size(); r++) {
            long[] p = prompts.get(r);
            if (p == null || p.length == 0) {
                throw new EngineException("prompt " + r + ": expected at least one token, found 0");
            }
            if (p.length > maxPositions) {
                throw new EngineException("prompt " + r + " has " + p.length + " tokens, more than the model's "
                        + maxPositions + " positions");
            }
            for (int s = 0; s < p.length; s++) {
                if (p[s] < 0 || (vocab > 0 && p[s] >= vocab)) {
                    throw new EngineException("prompt " + r + " token " + s + " = " + p[s]
                            + " is outside the vocabulary [0, " + vocab + ")");
                }
            }
        }
        return prompts.size();
    }

    private static List<long[]> results(long[][] history, int[] length, List<long[]> prompts) {
        List<long[]> out = new ArrayList<>(history.length);
        for (int r = 0; r < history.length; r++) {
            out.add(Arrays.copyOfRange(history[r], prompts.get(r).length, length[r]));
        }
        return out;
    }

    /** One forward step; {@code past} is the previous step's result (its present tensors), or null for none. */
    private OrtSession.Result run(long[] ids, int seq, long[] mask, int total, long[] pos, int batch,
            OrtSession.Result past, OrtSession.RunOptions runOptions) {
        List<OnnxTensor> owned = new ArrayList<>();
        try {
            Map<String, OnnxTensor> feeds = new LinkedHashMap<>();
            feeds.put(CausalLmNames.INPUT_IDS, longs(owned, ids, batch, seq));
            if (this.mask) {
                feeds.put(CausalLmNames.ATTENTION_MASK, longs(owned, mask, batch, total));
            }
            if (positions) {
                feeds.put(CausalLmNames.POSITION_IDS, longs(owned, pos, batch, seq));
            }
            for (int i = 0; i < layers; i++) {
                if (past == null) {
                    feeds.put(CausalLmNames.pastKey(i), emptyPast(owned, batch));
                    feeds.put(CausalLmNames.pastValue(i), emptyPast(owned, batch));
                } else {
                    feeds.put(CausalLmNames.pastKey(i), present(past, CausalLmNames.presentKey(i)));
                    feeds.put(CausalLmNames.pastValue(i), present(past, CausalLmNames.presentValue(i)));
                }
            }
            OrtSession s = graph.session();
            return runOptions == null ? s.run(feeds, outputs) : s.run(feeds, outputs, runOptions);
        } catch (OrtException e) {
            throw new EngineException("generation step on graph '" + graph.name() + "' failed: " + e.getMessage(), e);
        } finally {
            owned.forEach(OnnxTensor::close);
        }
    }

    private OnnxTensor longs(List<OnnxTensor> owned, long[] data, int rows, int cols) throws OrtException {
        OnnxTensor t = OnnxTensor.createTensor(graph.engine().environment(), LongBuffer.wrap(data),
                new long[] {rows, cols});
        owned.add(t);
        return t;
    }

    private OnnxTensor emptyPast(List<OnnxTensor> owned, int batch) throws OrtException {
        long[] shape = {batch, kvHeads, 0, headDim};
        OnnxTensor t = kvType == OnnxJavaType.DOUBLE
                ? OnnxTensor.createTensor(graph.engine().environment(), DoubleBuffer.allocate(0), shape)
                : OnnxTensor.createTensor(graph.engine().environment(), FloatBuffer.allocate(0), shape);
        owned.add(t);
        return t;
    }

    private static OnnxTensor present(OrtSession.Result r, String name) {
        OnnxValue v = r.get(name).orElseThrow(() -> new EngineException("generation: output '" + name
                + "' is missing"));
        return (OnnxTensor) v;
    }

    /** Per row, the logits of the last position, as float32. */
    private static float[][] lastLogits(OrtSession.Result r, int batch, int seq) {
        OnnxTensor t = present(r, CausalLmNames.LOGITS);
        long[] shape = t.getInfo().getShape();
        if (shape.length != 3 || shape[0] != batch || shape[1] != seq) {
            throw new EngineException("generation: logits have shape " + Arrays.toString(shape) + ", expected ["
                    + batch + ", " + seq + ", vocab]");
        }
        int v = (int) shape[2];
        float[][] out = new float[batch][v];
        if (t.getInfo().type == OnnxJavaType.DOUBLE) {
            DoubleBuffer d = t.getDoubleBuffer();
            for (int b = 0; b < batch; b++) {
                int base = (b * seq + seq - 1) * v;
                for (int i = 0; i < v; i++) {
                    out[b][i] = (float) d.get(base + i);
                }
            }
        } else {
            FloatBuffer f = t.getFloatBuffer();
            for (int b = 0; b < batch; b++) {
                f.get((b * seq + seq - 1) * v, out[b], 0, v);
            }
        }
        return out;
    }
}
