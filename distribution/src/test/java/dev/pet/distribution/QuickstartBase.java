package dev.pet.distribution;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.pet.api.TextTokenizer;
import dev.pet.engine.EngineOptions;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Checkpoint;
import dev.pet.gpt2.Gpt2Config;
import dev.pet.gpt2.Gpt2Graph;
import dev.pet.gpt2.Gpt2Tokenizers;
import dev.pet.gpt2.Gpt2Weights;
import dev.pet.hf.CausalLmGraphOptions;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.tensor.Tensor;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import dev.pet.runtime.train.GraphTrainStep;
import dev.pet.runtime.train.TrainStep;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Builds the quickstart's base model, {@code models/keeper-base} of the distribution: a byte-level BPE tokenizer
 * ({@code vocab.json} + {@code merges.txt}) learned from a bundled public-domain text, and a small GPT-2 pretrained
 * from scratch on that text (all weights trained with the project's own compiled train step), saved in the Hugging
 * Face layout ({@code config.json} + {@code model.safetensors}). Seeded: the same text, seed and thread count give
 * the same files. The quickstart then fine-tunes it with LoRA on a different text ({@code data/lighthouse.txt}).
 *
 * <p>Rebuild (600 steps; 25 minutes on two heavily shared cores, ORT intra-op threads from {@code -Dpet.threads}):
 * {@code ./mvnw -B -q package -pl distribution -am -DskipTests -Pquickstart-base}
 */
public final class QuickstartBase {
    /** GPT-2's pre-tokenizer split (contractions, letters, digits, other symbols, whitespace). */
    private static final Pattern GPT2_SPLIT = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
    static final String END_OF_TEXT = "<|endoftext|>";

    /** What to build; the defaults are the shipped model's. */
    record Recipe(int merges, int width, int layers, int heads, int positions, int seqLength, int batchSize,
                  int steps, double learningRate, int warmupSteps, long seed) {
        static Recipe shipped() {
            return new Recipe(255, 128, 4, 4, 128, 64, 16, 600, 3e-3, 30, 42);
        }
    }

    private QuickstartBase() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: QuickstartBase CORPUS.txt OUTPUT_DIR [STEPS]");
            System.exit(2);
        }
        Recipe r = Recipe.shipped();
        if (args.length > 2) {
            r = new Recipe(r.merges(), r.width(), r.layers(), r.heads(), r.positions(), r.seqLength(), r.batchSize(),
                    Integer.parseInt(args[2]), r.learningRate(), r.warmupSteps(), r.seed());
        }
        build(Path.of(args[0]), Path.of(args[1]), r);
    }

    /** Learns the tokenizer, pretrains the model and writes both into {@code out}. */
    static void build(Path corpus, Path out, Recipe r) throws IOException {
        String text = Files.readString(corpus, StandardCharsets.UTF_8);
        Files.createDirectories(out);
        writeTokenizer(trainBpe(text, r.merges()), out);
        TextTokenizer tokenizer = Gpt2Tokenizers.forDirectory(out);
        long[] ids = tokenizer.encode(text);
        int vocab = tokenizer.vocabularySize();
        System.err.printf(Locale.ROOT, "tokenizer: %d tokens, %d chars -> %d ids%n", vocab, text.length(), ids.length);

        Map<String, Object> cm = new LinkedHashMap<>(Gpt2Config.of(vocab, r.positions(), r.width(), r.layers(),
                r.heads()).toMap());
        cm.put("bos_token_id", tokenizer.eosTokenId());
        cm.put("eos_token_id", tokenizer.eosTokenId());
        Gpt2Config config = Gpt2Config.fromMap(cm, "quickstart base");
        Gpt2Weights weights = Gpt2Weights.random(config, r.seed());
        Gpt2Graph graph = Gpt2Graph.build(weights, CausalLmGraphOptions.training());
        List<String> params = new ArrayList<>(weights.tensors().keySet());
        OptimizerSpec spec = OptimizerSpec.adamW().withWeightDecay(0.01, OptimizerSpec.biasesAndNorms())
                .withMaxGradNorm(1.0);
        Random random = new Random(r.seed());
        long started = System.nanoTime();
        Map<String, Tensor> trained;
        int threads = Integer.getInteger("pet.threads", Runtime.getRuntime().availableProcessors());
        try (OrtEngine engine = new OrtEngine(EngineOptions.defaults().withIntraOpThreads(threads));
                GraphTrainStep step = new GraphTrainStep(engine, graph.model(), new GraphTrainStep.ModelIo(
                        graph.anatomy().inputIds(), graph.anatomy().attentionMask(), graph.anatomy().logits()),
                        params, spec, r.seed(), (t, d) -> { })) {
            double smoothed = Double.NaN;
            for (int s = 1; s <= r.steps(); s++) {
                TrainStep.StepResult res = step.step(List.of(batch(ids, r, random)), learningRate(r, s), s);
                smoothed = Double.isNaN(smoothed) ? res.loss() : 0.95 * smoothed + 0.05 * res.loss();
                if (s % 50 == 0 || s == 1) {
                    System.err.printf(Locale.ROOT, "step %d/%d  loss %.4f  (%.1f s)%n", s, r.steps(), smoothed,
                            (System.nanoTime() - started) / 1e9);
                }
            }
            trained = step.trainables();
        }
        Map<String, Tensor> all = new LinkedHashMap<>(weights.tensors());
        all.putAll(trained);
        Gpt2Checkpoint.save(Gpt2Weights.of(config, all, "quickstart base"), out);
    }

    /** Linear warmup, then cosine decay to a tenth of the peak. */
    static double learningRate(Recipe r, int step) {
        if (step <= r.warmupSteps()) {
            return r.learningRate() * step / r.warmupSteps();
        }
        double progress = (double) (step - r.warmupSteps()) / Math.max(1, r.steps() - r.warmupSteps());
        return r.learningRate() * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
    }

    private static Batch batch(long[] ids, Recipe r, Random random) {
        int window = r.seqLength() + 1;
        long[] tokens = new long[r.batchSize() * window];
        for (int b = 0; b < r.batchSize(); b++) {
            int start = random.nextInt(ids.length - window + 1);
            System.arraycopy(ids, start, tokens, b * window, window);
        }
        float[] mask = new float[r.batchSize() * r.seqLength()];
        Arrays.fill(mask, 1f);
        return new Batch(r.batchSize(), r.seqLength(), tokens, mask, DataPosition.START);
    }

    /** A learned byte-level BPE: merges in rank order over GPT-2's byte-to-unicode alphabet. */
    record Bpe(List<String> merges) {
    }

    /**
     * Classic BPE training: split text as GPT-2 does, count words, then repeatedly merge the most frequent adjacent
     * pair (ties broken by the pair's text, so the result is deterministic).
     */
    static Bpe trainBpe(String text, int merges) {
        char[] byteChar = byteToUnicode();
        Map<String, Integer> counts = new TreeMap<>();
        Matcher m = GPT2_SPLIT.matcher(text);
        while (m.find()) {
            StringBuilder sb = new StringBuilder();
            for (byte b : m.group().getBytes(StandardCharsets.UTF_8)) {
                sb.append(byteChar[b & 0xFF]);
            }
            counts.merge(sb.toString(), 1, Integer::sum);
        }
        List<List<String>> words = new ArrayList<>();
        List<Integer> freq = new ArrayList<>();
        counts.forEach((w, c) -> {
            List<String> symbols = new ArrayList<>();
            w.codePoints().forEach(cp -> symbols.add(new String(Character.toChars(cp))));
            words.add(symbols);
            freq.add(c);
        });
        List<String> learned = new ArrayList<>();
        for (int k = 0; k < merges; k++) {
            Map<String, Integer> pairs = new TreeMap<>();
            for (int i = 0; i < words.size(); i++) {
                List<String> w = words.get(i);
                for (int j = 0; j + 1 < w.size(); j++) {
                    pairs.merge(w.get(j) + " " + w.get(j + 1), freq.get(i), Integer::sum);
                }
            }
            String best = null;
            int bestCount = 1;
            for (Map.Entry<String, Integer> e : pairs.entrySet()) {
                if (e.getValue() > bestCount) {
                    best = e.getKey();
                    bestCount = e.getValue();
                }
            }
            if (best == null) {
                break; // nothing occurs twice any more
            }
            learned.add(best);
            String left = best.substring(0, best.indexOf(' '));
            String right = best.substring(best.indexOf(' ') + 1);
            for (List<String> w : words) {
                for (int j = 0; j + 1 < w.size(); j++) {
                    if (w.get(j).equals(left) && w.get(j + 1).equals(right)) {
                        w.set(j, left + right);
                        w.remove(j + 1);
                    }
                }
            }
        }
        return new Bpe(learned);
    }

    /** Writes GPT-2's {@code vocab.json} (256 byte symbols, then one token per merge, then end-of-text) and {@code merges.txt}. */
    static void writeTokenizer(Bpe bpe, Path dir) throws IOException {
        char[] byteChar = byteToUnicode();
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(byteChar[b]), b);
        }
        for (String merge : bpe.merges()) {
            vocab.putIfAbsent(merge.replace(" ", ""), vocab.size());
        }
        vocab.put(END_OF_TEXT, vocab.size());
        ObjectMapper json = new ObjectMapper().disable(SerializationFeature.INDENT_OUTPUT);
        Files.writeString(dir.resolve("vocab.json"), json.writeValueAsString(vocab), StandardCharsets.UTF_8);
        StringBuilder merges = new StringBuilder("#version: 0.2\n");
        bpe.merges().forEach(mg -> merges.append(mg).append('\n'));
        Files.writeString(dir.resolve("merges.txt"), merges.toString(), StandardCharsets.UTF_8);
    }

    /** GPT-2's reversible byte-to-unicode table: printable bytes map to themselves, the rest to code points from 256. */
    static char[] byteToUnicode() {
        char[] map = new char[256];
        boolean[] printable = new boolean[256];
        for (int b = '!'; b <= '~'; b++) {
            printable[b] = true;
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            printable[b] = true;
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            printable[b] = true;
        }
        int next = 256;
        for (int b = 0; b < 256; b++) {
            map[b] = printable[b] ? (char) b : (char) next++;
        }
        return map;
    }
}
