package dev.pet.djl;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Block;
import ai.djl.training.ParameterStore;
import ai.djl.translate.NoBatchifyTranslator;
import ai.djl.translate.TranslateException;
import ai.djl.translate.TranslatorContext;
import dev.pet.api.TextTokenizer;
import dev.pet.engine.GenerationConfig;
import dev.pet.engine.Generator;
import dev.pet.engine.Sampler;
import dev.pet.onnx.CausalLmNames;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Prompt in, continuation out, over an exported with-past graph run by DJL's ONNX Runtime engine: the prompt runs
 * once, then one token per step against the key/value cache (Optimum names, as pet-engine's {@link Generator}
 * feeds them). DJL drives the session here, so this loop is DJL's; tokens are picked by pet-engine's
 * {@link Sampler}, so a seed gives the same text as {@code pet generate}.
 */
public final class PetTextGenerationTranslator implements NoBatchifyTranslator<String, String> {
    private static final String STATE = "pet.generation";
    private final TextTokenizer tokenizer;
    private final GenerationConfig config;
    private final long maxPositions;
    private final long kvHeads;
    private final long headDim;
    private int layers;

    /**
     * @param kvHeads key/value heads and {@code headDim} the head width of the cache inputs (DJL does not report
     *                input shapes), for the first step's empty past
     */
    public PetTextGenerationTranslator(TextTokenizer tokenizer, GenerationConfig config, long maxPositions,
            long kvHeads, long headDim) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.config = Objects.requireNonNull(config, "config");
        this.maxPositions = maxPositions;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    @Override
    public void prepare(TranslatorContext ctx) {
        var described = ctx.getModel().describeInput();
        if (described == null) {
            throw new IllegalArgumentException("model '" + ctx.getModel().getName() + "' does not describe its inputs");
        }
        List<String> names = described.keys();
        int n = 0;
        while (names.contains(CausalLmNames.pastKey(n))) {
            n++;
        }
        if (n == 0 || !names.contains(CausalLmNames.INPUT_IDS)) {
            throw new IllegalArgumentException("model '" + ctx.getModel().getName() + "' is not a with-past "
                    + "generation graph (inputs " + names + "); export it with pet export");
        }
        this.layers = n;
    }

    /** The generation state of one prediction: its tokens so far and its sampler. */
    private static final class State {
        long[] tokens;
        int length;
        int promptLength;
        Sampler sampler;
    }

    @Override
    public NDList processInput(TranslatorContext ctx, String prompt) {
        long[] ids = tokenizer.encode(Objects.requireNonNull(prompt, "prompt"));
        if (ids.length == 0) {
            throw new IllegalArgumentException("the prompt is empty after tokenization");
        }
        long room = maxPositions - config.maxNewTokens();
        if (room < 1) {
            throw new IllegalArgumentException("max_new_tokens " + config.maxNewTokens() + " leaves no room for a "
                    + "prompt in the model's " + maxPositions + " positions");
        }
        if (ids.length > room) {
            ids = Arrays.copyOfRange(ids, (int) (ids.length - room), ids.length);
        }
        State s = new State();
        s.tokens = Arrays.copyOf(ids, ids.length + config.maxNewTokens());
        s.length = ids.length;
        s.promptLength = ids.length;
        s.sampler = new Sampler(config);
        ctx.setAttachment(STATE, s);
        NDManager m = ctx.getNDManager();
        long[] positions = new long[ids.length];
        long[] mask = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            positions[i] = i;
            mask[i] = 1;
        }
        NDList in = new NDList();
        in.add(named(m.create(ids, new Shape(1, ids.length)), CausalLmNames.INPUT_IDS));
        in.add(named(m.create(mask, new Shape(1, ids.length)), CausalLmNames.ATTENTION_MASK));
        in.add(named(m.create(positions, new Shape(1, ids.length)), CausalLmNames.POSITION_IDS));
        for (int i = 0; i < layers; i++) {
            in.add(named(m.zeros(new Shape(1, kvHeads, 0, headDim), DataType.FLOAT32), CausalLmNames.pastKey(i)));
            in.add(named(m.zeros(new Shape(1, kvHeads, 0, headDim), DataType.FLOAT32), CausalLmNames.pastValue(i)));
        }
        return in;
    }

    @Override
    public String processOutput(TranslatorContext ctx, NDList out) throws TranslateException {
        State s = (State) ctx.getAttachment(STATE);
        Block block = ctx.getBlock();
        NDManager m = ctx.getNDManager();
        ParameterStore store = new ParameterStore(m, false);
        while (true) {
            long next = s.sampler.next(lastLogits(out), s.tokens, s.length);
            if (next == config.eosTokenId()) {
                break;
            }
            s.tokens[s.length++] = next;
            if (s.length - s.promptLength == config.maxNewTokens() || s.length >= maxPositions) {
                break;
            }
            NDList in = new NDList();
            long[] mask = new long[s.length];
            Arrays.fill(mask, 1);
            in.add(named(m.create(new long[] {next}, new Shape(1, 1)), CausalLmNames.INPUT_IDS));
            in.add(named(m.create(mask, new Shape(1, s.length)), CausalLmNames.ATTENTION_MASK));
            in.add(named(m.create(new long[] {s.length - 1}, new Shape(1, 1)), CausalLmNames.POSITION_IDS));
            for (int i = 0; i < layers; i++) {
                in.add(named(present(out, CausalLmNames.presentKey(i)), CausalLmNames.pastKey(i)));
                in.add(named(present(out, CausalLmNames.presentValue(i)), CausalLmNames.pastValue(i)));
            }
            out = block.forward(store, in, false);
        }
        return tokenizer.decode(Arrays.copyOfRange(s.tokens, s.promptLength, s.length));
    }

    private static NDArray present(NDList out, String name) throws TranslateException {
        NDArray a = out.get(name);
        if (a == null) {
            throw new TranslateException("the model gave no output '" + name + "'");
        }
        return a;
    }

    private static float[] lastLogits(NDList out) throws TranslateException {
        NDArray logits = present(out, CausalLmNames.LOGITS);
        Shape shape = logits.getShape();
        if (shape.dimension() != 3 || shape.get(0) != 1) {
            throw new TranslateException("logits: expected shape [1, sequence, vocab], found " + shape);
        }
        int seq = Math.toIntExact(shape.get(1));
        int vocab = Math.toIntExact(shape.get(2));
        float[] all = logits.toFloatArray();
        return Arrays.copyOfRange(all, (seq - 1) * vocab, seq * vocab);
    }

    private static NDArray named(NDArray a, String name) {
        a.setName(name);
        return a;
    }
}
