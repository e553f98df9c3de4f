package dev.pet.llama;

import dev.pet.api.PetException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Rotary position embedding frequencies, as Hugging Face's {@code ROPE_INIT_FUNCTIONS} compute them for the
 * {@code rope_scaling} types {@code default} (none), {@code linear} (every frequency divided by {@code factor}) and
 * {@code llama3} (long wavelengths divided by {@code factor}, short ones kept, the band between interpolated).
 *
 * @param type                          {@code default}, {@code linear} or {@code llama3}
 * @param factor                        scaling factor (1 for {@code default})
 * @param lowFreqFactor                 {@code llama3}: {@code low_freq_factor}
 * @param highFreqFactor                {@code llama3}: {@code high_freq_factor}
 * @param originalMaxPositionEmbeddings {@code llama3}: the context length the frequencies were trained for
 */
public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
        int originalMaxPositionEmbeddings) {
    /** The {@code rope_scaling} types this runtime implements. */
    public static final Set<String> TYPES = Set.of("default", "linear", "llama3");

    public static final RopeScaling NONE = new RopeScaling("default", 1, 0, 0, 0);

    public RopeScaling {
        Objects.requireNonNull(type, "type");
        if (!TYPES.contains(type)) {
            throw new PetException("rope_scaling: type '" + type + "' is not supported; expected one of "
                    + TYPES.stream().sorted().toList());
        }
        if (!(factor > 0) || !Double.isFinite(factor)) {
            throw new PetException("rope_scaling: factor expected a positive number, found " + factor);
        }
        if (type.equals("llama3")) {
            if (!(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor)) {
                throw new PetException("rope_scaling (llama3): expected 0 < low_freq_factor < high_freq_factor, "
                        + "found " + lowFreqFactor + " and " + highFreqFactor);
            }
            if (originalMaxPositionEmbeddings <= 0) {
                throw new PetException("rope_scaling (llama3): original_max_position_embeddings expected a "
                        + "positive integer, found " + originalMaxPositionEmbeddings);
            }
        }
    }

    /**
     * Binds a {@code rope_scaling} object ({@code rope_type}, or the older {@code type}, plus its parameters); null
     * means none. {@code source} names the file in errors.
     */
    public static RopeScaling fromMap(Object value, String source) {
        if (value == null) {
            return NONE;
        }
        if (!(value instanceof Map<?, ?> m)) {
            throw new PetException(source + ": rope_scaling expected an object or null, found " + value);
        }
        Object t = m.get("rope_type") != null ? m.get("rope_type") : m.get("type");
        if (!(t instanceof String type)) {
            throw new PetException(source + ": rope_scaling needs a 'rope_type' (or 'type') string, found " + t);
        }
        try {
            return switch (type) {
                case "default" -> NONE;
                case "linear" -> new RopeScaling(type, number(m, "factor", source), 0, 0, 0);
                case "llama3" -> new RopeScaling(type, number(m, "factor", source),
                        number(m, "low_freq_factor", source), number(m, "high_freq_factor", source),
                        (int) number(m, "original_max_position_embeddings", source));
                default -> new RopeScaling(type, 1, 0, 0, 0);
            };
        } catch (PetException e) {
            throw e.getMessage().startsWith(source) ? e : new PetException(source + ": " + e.getMessage(), e);
        }
    }

    private static double number(Map<?, ?> m, String key, String source) {
        Object v = m.get(key);
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        throw new PetException(source + ": rope_scaling." + key + " expected a number, found " + v);
    }

    /** {@code rope_scaling} as Hugging Face writes it, or null for {@code default}. */
    public Map<String, Object> toMap() {
        if (type.equals("default")) {
            return null;
        }
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("rope_type", type);
        m.put("factor", factor);
        if (type.equals("llama3")) {
            m.put("low_freq_factor", lowFreqFactor);
            m.put("high_freq_factor", highFreqFactor);
            m.put("original_max_position_embeddings", originalMaxPositionEmbeddings);
        }
        return m;
    }

    /**
     * The inverse frequencies of the {@code dim/2} rotated pairs: {@code theta^(-2i/dim)}, scaled as the type says.
     * Computed in float32 like Hugging Face, so graphs match exported models bit for bit in their constants.
     */
    public float[] inverseFrequencies(double theta, int dim) {
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = (float) (1.0 / Math.pow(theta, (float) (2 * i) / dim));
        }
        switch (type) {
            case "linear" -> {
                for (int i = 0; i < inv.length; i++) {
                    inv[i] = (float) (inv[i] / factor);
                }
            }
            case "llama3" -> {
                double lowWavelen = originalMaxPositionEmbeddings / lowFreqFactor;
                double highWavelen = originalMaxPositionEmbeddings / highFreqFactor;
                for (int i = 0; i < inv.length; i++) {
                    double f = inv[i];
                    double wavelen = 2 * Math.PI / f;
                    double scaled = wavelen > lowWavelen ? f / factor : f;
                    if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
                        double smooth = (originalMaxPositionEmbeddings / wavelen - lowFreqFactor)
                                / (highFreqFactor - lowFreqFactor);
                        scaled = (1 - smooth) * scaled / factor + smooth * scaled;
                    }
                    inv[i] = (float) scaled;
                }
            }
            default -> {
            }
        }
        return inv;
    }
}
