package dev.pet.runtime.serve;

import com.fasterxml.jackson.databind.JsonNode;
import dev.pet.engine.GenerationConfig;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * A validated {@code POST /v1/completions} body (OpenAI's completions API: {@code model}, {@code prompt} as a string
 * or a list of strings, {@code max_tokens}, {@code temperature}, {@code top_p}, {@code stop}, {@code seed},
 * {@code stream}; also {@code top_k} and {@code repetition_penalty}). Unknown fields are refused, not ignored, so a
 * typo never silently changes sampling.
 */
record CompletionRequest(String model, List<String> prompts, GenerationConfig generation, List<String> stop,
        boolean stream) {
    static final Set<String> FIELDS = Set.of("model", "prompt", "max_tokens", "temperature", "top_p", "top_k",
            "repetition_penalty", "stop", "seed", "stream", "user");
    static final int MAX_PROMPTS = 16;
    static final int MAX_STOPS = 4;

    static CompletionRequest parse(JsonNode body, int maxTokensCap, long defaultSeed) {
        if (body == null || !body.isObject()) {
            throw ApiError.badRequest("the body must be a JSON object");
        }
        for (Iterator<String> it = body.fieldNames(); it.hasNext();) {
            String f = it.next();
            if (!FIELDS.contains(f)) {
                throw ApiError.badRequest("unknown field '" + f + "'; expected one of " + new java.util.TreeSet<>(FIELDS));
            }
        }
        JsonNode model = body.get("model");
        if (model == null || !model.isTextual() || model.asText().isEmpty()) {
            throw ApiError.badRequest("'model' is required: the base model's name or a registered adapter's "
                    + "(GET /v1/models lists them)");
        }
        List<String> prompts = strings(body.get("prompt"), "prompt", MAX_PROMPTS);
        if (prompts.isEmpty()) {
            throw ApiError.badRequest("'prompt' is required: a string or a list of up to " + MAX_PROMPTS + " strings");
        }
        int maxTokens = (int) integer(body, "max_tokens", 16, 1, maxTokensCap);
        double temperature = number(body, "temperature", 1.0, 0, 2, true);
        double topP = number(body, "top_p", 1.0, 0, 1, false);
        int topK = (int) integer(body, "top_k", 0, 0, Integer.MAX_VALUE);
        double penalty = number(body, "repetition_penalty", 1.0, 0, 10, false);
        long seed = integer(body, "seed", defaultSeed, Long.MIN_VALUE, Long.MAX_VALUE);
        List<String> stop = strings(body.get("stop"), "stop", MAX_STOPS);
        JsonNode stream = body.get("stream");
        if (stream != null && !stream.isBoolean() && !stream.isNull()) {
            throw ApiError.badRequest("'stream' must be true or false");
        }
        JsonNode user = body.get("user");
        if (user != null && !user.isTextual() && !user.isNull()) {
            throw ApiError.badRequest("'user' must be a string");
        }
        return new CompletionRequest(model.asText(), prompts, new GenerationConfig(maxTokens, temperature, topK, topP,
                penalty, seed, -1), stop, stream != null && stream.asBoolean());
    }

    private static List<String> strings(JsonNode n, String field, int max) {
        List<String> out = new ArrayList<>();
        if (n == null || n.isNull()) {
            return out;
        }
        if (n.isTextual()) {
            out.add(n.asText());
            return out;
        }
        if (!n.isArray()) {
            throw ApiError.badRequest("'" + field + "' must be a string or a list of strings");
        }
        if (n.size() > max) {
            throw ApiError.badRequest("'" + field + "' has " + n.size() + " entries; at most " + max);
        }
        for (JsonNode e : n) {
            if (!e.isTextual()) {
                throw ApiError.badRequest("'" + field + "' must be a string or a list of strings");
            }
            out.add(e.asText());
        }
        return out;
    }

    private static long integer(JsonNode body, String field, long dflt, long min, long max) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isIntegralNumber() || !n.canConvertToLong()) {
            throw ApiError.badRequest("'" + field + "' must be an integer, found " + abbreviate(n));
        }
        long v = n.asLong();
        if (v < min || v > max) {
            throw ApiError.badRequest("'" + field + "' must be in [" + min + ", " + max + "], found " + v);
        }
        return v;
    }

    private static double number(JsonNode body, String field, double dflt, double min, double max,
            boolean minInclusive) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isNumber()) {
            throw ApiError.badRequest("'" + field + "' must be a number, found " + abbreviate(n));
        }
        double v = n.asDouble();
        if (!(minInclusive ? v >= min : v > min) || !(v <= max)) {
            throw ApiError.badRequest("'" + field + "' must be in " + (minInclusive ? "[" : "(") + min + ", " + max
                    + "], found " + v);
        }
        return v;
    }

    private static String abbreviate(JsonNode n) {
        String s = n.toString();
        return s.length() > 40 ? s.substring(0, 40) + "..." : s;
    }
}
