package dev.pet.djl;

import ai.djl.Model;
import ai.djl.engine.Engine;
import ai.djl.translate.TranslateException;
import ai.djl.translate.Translator;
import ai.djl.translate.TranslatorFactory;
import ai.djl.util.Pair;
import dev.pet.api.ModelRequest;
import dev.pet.api.PetAdapters;
import dev.pet.api.PretrainedModel;
import dev.pet.engine.GenerationConfig;
import java.lang.reflect.Type;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Makes {@link PetTextGenerationTranslator}s for {@code String -> String} criteria over a {@code pet export}
 * directory (named in its {@code serving.properties}, so {@code Criteria.builder().setTypes(String.class,
 * String.class).optModelPath(dir)} needs nothing else). The tokenizer comes from the model family's plugin, found
 * with {@link java.util.ServiceLoader} as in {@code pet} itself. Arguments ({@code Criteria.optArgument}):
 * {@code max_new_tokens} (default 50), {@code temperature} (0 = greedy, the default), {@code top_k}, {@code top_p},
 * {@code repetition_penalty}, {@code seed}.
 */
public final class PetTranslatorFactory implements TranslatorFactory {
    /** DJL switches: no usage tracking, no downloads, no second engine for array operations. */
    private static final List<String> OFFLINE_SWITCHES = List.of("OPT_OUT_TRACKING", "offline",
            "ai.djl.onnx.disable_alternative");

    @Override
    public Set<Pair<Type, Type>> getSupportedTypes() {
        return Set.of(new Pair<>(String.class, String.class));
    }

    @Override
    @SuppressWarnings("unchecked")
    public <I, O> Translator<I, O> newInstance(Class<I> input, Class<O> output, Model model, Map<String, ?> arguments)
            throws TranslateException {
        if (input != String.class || output != String.class) {
            throw new TranslateException("PET models translate String to String, not " + input.getSimpleName()
                    + " to " + output.getSimpleName());
        }
        Path dir = model.getModelPath();
        try {
            PetModelInfo info = PetModelInfo.read(dir);
            PetAdapters registry = PetAdapters.discover(PetTranslatorFactory.class.getClassLoader());
            PretrainedModel base = registry.getPretrainedModel(info.provider(), new ModelRequest(info.model(),
                    Map.of(), 0, ModelRequest.GraphForm.GENERATION));
            GenerationConfig config = new GenerationConfig(integer(arguments, "max_new_tokens", 50),
                    number(arguments, "temperature", 0), integer(arguments, "top_k", 0), number(arguments, "top_p", 1),
                    number(arguments, "repetition_penalty", 1), (long) number(arguments, "seed", 42),
                    info.eosTokenId());
            return (Translator<I, O>) new PetTextGenerationTranslator(base.tokenizer(), config, info.maxPositions(),
                    info.kvHeads(), info.headDim());
        } catch (RuntimeException e) {
            throw new TranslateException("cannot make a PET translator for " + dir + ": " + e.getMessage(), e);
        }
    }

    private static int integer(Map<String, ?> args, String key, int dflt) {
        return (int) number(args, key, dflt);
    }

    private static double number(Map<String, ?> args, String key, double dflt) {
        Object v = args == null ? null : args.get(key);
        if (v == null) {
            return dflt;
        }
        try {
            return v instanceof Number n ? n.doubleValue() : Double.parseDouble(v.toString().trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("argument " + key + ": expected a number, found '" + v + "'");
        }
    }

    /**
     * Sets DJL's offline switches (unless already set) and starts its ONNX Runtime engine. Call it before anything
     * else in the JVM opens ONNX Runtime: DJL's engine creates the process's ONNX Runtime environment with its own
     * thread pool, which ONNX Runtime refuses once an environment exists.
     */
    public static synchronized void initialiseEngine() {
        for (String s : OFFLINE_SWITCHES) {
            if (System.getProperty(s) == null) {
                System.setProperty(s, "true");
            }
        }
        // Starting the engine (ONNX Runtime's environment and thread pools) overflowed the default 1 MiB thread stack
        // on a 48-jar class path (a segmentation fault, no Java error): start it on a thread with room to spare.
        Throwable[] failure = new Throwable[1];
        Thread starter = new Thread(null, () -> {
            try {
                Engine.getEngine("OnnxRuntime");
            } catch (RuntimeException | LinkageError e) {
                failure[0] = e;
            }
        }, "pet-djl-engine-start", 16L << 20);
        starter.start();
        try {
            starter.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while starting DJL's ONNX Runtime engine", e);
        }
        if (failure[0] != null) {
            throw new IllegalStateException("DJL's ONNX Runtime engine could not start (" + failure[0] + "). It must "
                    + "start before any other ONNX Runtime environment exists in this JVM, and "
                    + "ai.djl.onnxruntime:onnxruntime-engine must be on the class path", failure[0]);
        }
    }
}
