package dev.pet.runtime.generate;

import dev.pet.api.PetException;
import dev.pet.api.TextTokenizer;
import dev.pet.engine.GenerationConfig;
import dev.pet.engine.Generator;
import dev.pet.engine.OrtAdapter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Text in, text out over pet-engine's {@link Generator}: tokenizes prompts, fits them to the model's positions,
 * streams decoded text as it becomes final, and stops at stop strings. Shared by {@code pet generate},
 * {@code pet serve} and the DJL translator. Safe for concurrent calls.
 */
public final class TextGenerator {
    /** What to do with a prompt that leaves no room for {@code max_new_tokens} within the model's positions. */
    public enum Overflow {
        /** Keep the prompt's last tokens and say so (the CLI). */
        TRUNCATE_LEFT,
        /** Refuse with an error (the server: the client decides what to cut). */
        REFUSE
    }

    private final TextTokenizer tokenizer;
    private final Generator generator;

    public TextGenerator(TextTokenizer tokenizer, Generator generator) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
        this.generator = Objects.requireNonNull(generator, "generator");
    }

    public TextTokenizer tokenizer() {
        return tokenizer;
    }

    public long maxPositions() {
        return generator.maxPositions();
    }

    /**
     * Generates one completion per prompt, as one batch.
     *
     * @param config   sampling settings; its end-of-text id is replaced by the tokenizer's
     * @param stop     strings that end a completion (not included in it); empty for none
     * @param adapter  an ONNX Runtime adapter to activate, or null
     * @param overflow what to do with prompts too long for the positions left
     * @param warnings receives one line per truncated prompt
     * @param sink     receives text as it becomes final
     */
    public List<Completion> complete(List<String> prompts, GenerationConfig config, List<String> stop,
            OrtAdapter adapter, Overflow overflow, Consumer<String> warnings, TextSink sink) {
        Objects.requireNonNull(prompts, "prompts");
        List<String> stops = stop.stream().filter(s -> !s.isEmpty()).toList();
        long positions = generator.maxPositions();
        int maxNew = config.maxNewTokens();
        if (maxNew >= positions) {
            if (overflow == Overflow.REFUSE) {
                throw new PetException("max_tokens " + maxNew + " leaves no room for a prompt in the model's "
                        + positions + " positions");
            }
            maxNew = (int) positions - 1;
            warnings.accept("max_new_tokens " + config.maxNewTokens() + " is more than the model's " + positions
                    + " positions allow; generating at most " + maxNew);
        }
        List<long[]> ids = new ArrayList<>();
        for (int r = 0; r < prompts.size(); r++) {
            long[] p = tokenizer.encode(prompts.get(r));
            if (p.length == 0) {
                throw new PetException("prompt " + (prompts.size() > 1 ? (r + 1) + " " : "")
                        + "is empty after tokenization");
            }
            long room = positions - maxNew;
            if (p.length > room) {
                if (overflow == Overflow.REFUSE) {
                    throw new PetException("prompt too long: " + p.length + " tokens + max_tokens " + maxNew
                            + " exceed the model's " + positions + " positions");
                }
                warnings.accept("prompt " + (prompts.size() > 1 ? (r + 1) + " " : "") + "has " + p.length
                        + " tokens; keeping its last " + room + " so that " + maxNew + " new tokens fit the model's "
                        + positions + " positions");
                p = Arrays.copyOfRange(p, (int) (p.length - room), p.length);
            }
            ids.add(p);
        }
        GenerationConfig effective = new GenerationConfig(maxNew, config.temperature(), config.topK(), config.topP(),
                config.repetitionPenalty(), config.seed(), tokenizer.eosTokenId());
        Row[] rows = new Row[prompts.size()];
        for (int r = 0; r < rows.length; r++) {
            rows[r] = new Row(r, stops, sink);
        }
        List<long[]> out = generator.generate(ids, effective, adapter, (row, token) -> rows[row].accept(token));
        List<Completion> completions = new ArrayList<>();
        for (int r = 0; r < rows.length; r++) {
            Row row = rows[r];
            long[] generated = out.get(r);
            String text = row.finish(generated);
            boolean hitStop = row.stopped || generated.length < maxNew
                    && ids.get(r).length + generated.length < positions;
            completions.add(new Completion(text, ids.get(r).length, generated.length, hitStop ? "stop" : "length"));
        }
        return completions;
    }

    /** Streaming state of one prompt: what was generated, what was emitted, whether a stop string ended it. */
    private final class Row {
        private final int index;
        private final List<String> stops;
        private final TextSink sink;
        private long[] tokens = new long[16];
        private int count;
        private int emitted;
        private String text = "";
        private boolean stopped;
        private boolean clientGone;

        Row(int index, List<String> stops, TextSink sink) {
            this.index = index;
            this.stops = stops;
            this.sink = sink;
        }

        boolean accept(long token) {
            if (count == tokens.length) {
                tokens = Arrays.copyOf(tokens, count * 2);
            }
            tokens[count++] = token;
            text = tokenizer.decode(Arrays.copyOf(tokens, count));
            int cut = firstStop(text);
            if (cut >= 0) {
                text = text.substring(0, cut);
                stopped = true;
                emit(text.length());
                return false;
            }
            emit(safeEnd(text));
            return !clientGone;
        }

        String finish(long[] generated) {
            if (!stopped) {
                text = tokenizer.decode(generated);
                int cut = firstStop(text);
                if (cut >= 0) {
                    text = text.substring(0, cut);
                    stopped = true;
                }
            }
            emit(text.length());
            return text;
        }

        private void emit(int end) {
            if (end > emitted && !clientGone) {
                clientGone = !sink.accept(index, text.substring(emitted, end));
                emitted = end;
            }
        }

        private int firstStop(String t) {
            int best = -1;
            for (String s : stops) {
                int i = t.indexOf(s, Math.max(0, emitted - s.length()));
                if (i >= 0 && (best < 0 || i < best)) {
                    best = i;
                }
            }
            return best;
        }

        /** Where final text ends: before a partial UTF-8 character and before a tail that may begin a stop string. */
        private int safeEnd(String t) {
            int end = t.length();
            while (end > emitted && t.charAt(end - 1) == '\uFFFD') {
                end--;
            }
            int hold = 0;
            for (String s : stops) {
                for (int k = Math.min(s.length() - 1, end); k > hold; k--) {
                    if (t.regionMatches(end - k, s, 0, k)) {
                        hold = k;
                        break;
                    }
                }
            }
            end -= hold;
            return Math.max(end, emitted);
        }
    }
}
