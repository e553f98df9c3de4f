package dev.pet.runtime.bench;

import dev.pet.api.ModelRequest;
import dev.pet.api.PetModel;
import dev.pet.api.PretrainedModel;
import dev.pet.api.Quantization;
import dev.pet.engine.EngineOptions;
import dev.pet.engine.OrtEngine;
import dev.pet.gpt2.Gpt2Provider;
import dev.pet.lora.LoraAdapter;
import dev.pet.onnx.optim.OptimizerSpec;
import dev.pet.onnx.quant.QuantSpec;
import dev.pet.runtime.data.Batch;
import dev.pet.runtime.data.DataPosition;
import dev.pet.runtime.train.GraphTrainStep;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * LoRA r=8 (c_attn) train steps on a GPT-2-shaped random model with a float base and with quantized bases
 * ({@code -Dpet.bench.model=gpt2|gpt2-medium}, default gpt2), sequence 128, batch 4. Every row's session is built
 * first and kept open; then the rows take turns, one step each per round ({@code -Dpet.bench.rounds}, default 7,
 * after one warm-up round), so load that changes during the run falls on every row alike. A row's step time is its
 * median over the rounds; "vs fp32" is the median over rounds of the float step divided by the row's step in the
 * same round.
 *
 * <pre>
 * ./mvnw -B -q -pl pet-runtime -am test -Dtest='QuantizedTrainStepBenchmark' -Dsurefire.failIfNoSpecifiedTests=false -Dpet.bench=true -Dpet.test.argLine=-Xmx6g
 * </pre>
 *
 * {@code -Dpet.bench.profile=DIR} writes each row's ONNX Runtime profile to DIR/ROW and prints its kernel time by op
 * type, phase and module ({@link OrtProfileSummary}).
 * {@code -Dpet.bench.rows=fp32,q4-int8,...} picks rows (names below; default all; without fp32 there are no ratios,
 * and one row alone gives that configuration's peak RSS under {@code /usr/bin/time -f %M}). Results go to stdout and
 * {@code pet-runtime/target/benchmarks/quantized-train-step-MODEL.txt}.
 */
@EnabledIfSystemProperty(named = "pet.bench", matches = "true")
class QuantizedTrainStepBenchmark {
    private static final int BATCH = 4;
    private static final int SEQ = 128;

    /**
     * One configuration: its quantization (null: float base), whether MatMulNBits sessions pre-pack and whether the
     * LM head is quantized too ({@code quantization.lm_head}).
     */
    record Row(String name, QuantSpec spec, boolean prepackQuantized, boolean lmHead) {
        Row(String name, QuantSpec spec, boolean prepackQuantized) {
            this(name, spec, prepackQuantized, false);
        }
    }

    private static final QuantSpec.Compute INT8 = QuantSpec.Compute.INT8;
    private static final QuantSpec.Compute FP32 = QuantSpec.Compute.FP32;
    private static final QuantSpec.Kernel NBITS = QuantSpec.Kernel.MATMUL_NBITS;
    private static final QuantSpec.Kernel DQ = QuantSpec.Kernel.DEQUANTIZE;

    static final List<Row> ROWS = List.of(
            new Row("fp32", null, true),
            new Row("q4-int8", new QuantSpec(4, 64, true, INT8, NBITS), true),
            new Row("q4-int8-head", new QuantSpec(4, 64, true, INT8, NBITS), true, true),
            new Row("q8-int8-head", new QuantSpec(8, 64, true, INT8, NBITS), true, true),
            new Row("q8-integer", new QuantSpec(8, 64, true, INT8, QuantSpec.Kernel.MATMUL_INTEGER), true),
            new Row("q8-integer-head", new QuantSpec(8, 64, true, INT8, QuantSpec.Kernel.MATMUL_INTEGER), true, true),
            new Row("q8-int8-head-bs128", new QuantSpec(8, 128, true, INT8, NBITS), true, true),
            new Row("q4-int8-head-bs128", new QuantSpec(4, 128, true, INT8, NBITS), true, true),
            new Row("q4-int8-unpacked", new QuantSpec(4, 64, true, INT8, NBITS), false),
            new Row("q4-int8-bs32", new QuantSpec(4, 32, true, INT8, NBITS), true),
            new Row("q4-int8-bs128", new QuantSpec(4, 128, true, INT8, NBITS), true),
            new Row("q8-int8", new QuantSpec(8, 64, true, INT8, NBITS), true),
            new Row("q8-int8-bs128", new QuantSpec(8, 128, true, INT8, NBITS), true),
            new Row("q4-fp32", new QuantSpec(4, 64, true, FP32, NBITS), true),
            new Row("q8-fp32", new QuantSpec(8, 64, true, FP32, NBITS), true),
            new Row("q4-dequantize", new QuantSpec(4, 64, true, FP32, DQ), true),
            new Row("q8-dequantize", new QuantSpec(8, 64, true, FP32, DQ), true));

    /** An open row: its engine, train step and the times measured. */
    private static final class Live implements AutoCloseable {
        final Row row;
        final OrtEngine engine;
        final GraphTrainStep step;
        final double quantizeSeconds;
        final double setupSeconds;
        final long vocab;
        final List<Double> secs = new ArrayList<>();

        Live(Row row, OrtEngine engine, GraphTrainStep step, double quantizeSeconds, double setupSeconds,
                long vocab) {
            this.row = row;
            this.vocab = vocab;
            this.engine = engine;
            this.step = step;
            this.quantizeSeconds = quantizeSeconds;
            this.setupSeconds = setupSeconds;
        }

        @Override
        public void close() {
            step.close();
            engine.close();
        }
    }

    @Test
    void floatAgainstQuantizedBases() throws Exception {
        String name = System.getProperty("pet.bench.model", "gpt2");
        int rounds = Integer.getInteger("pet.bench.rounds", 7);
        String pick = System.getProperty("pet.bench.rows", "");
        List<Row> rows = new ArrayList<>();
        for (Row r : ROWS) {
            if (pick.isBlank() || Arrays.asList(pick.split(",")).contains(r.name())) {
                rows.add(r);
            }
        }
        Map<Row, Live> live = new LinkedHashMap<>();
        try {
            for (Row r : rows) {
                live.put(r, open(name, r));
                System.out.printf(Locale.ROOT, "opened %s%n", r.name());
            }
            Batch batch = batch(live.values().iterator().next().vocab);
            for (Live l : live.values()) {
                l.step.step(List.of(batch), 1e-4, 1); // warm-up: first-run allocations
            }
            for (int round = 0; round < rounds; round++) {
                // rotate the order each round so no row always follows the same neighbour
                for (int i = 0; i < rows.size(); i++) {
                    Live l = live.get(rows.get((i + round) % rows.size()));
                    long t = System.nanoTime();
                    l.step.step(List.of(batch), 1e-4, round + 2);
                    l.secs.add((System.nanoTime() - t) / 1e9);
                }
            }
            StringBuilder out = new StringBuilder(String.format(Locale.ROOT,
                    "%s, LoRA r=8 on c_attn, batch %d x %d, %d interleaved rounds after a warm-up%n", name, BATCH, SEQ,
                    rounds));
            out.append(String.format(Locale.ROOT, "%-18s %-38s %9s %10s %9s %8s %8s %8s%n", "row", "quantization",
                    "quantize", "build+sess", "step", "min", "tok/s", "vs fp32"));
            Live floatRow = live.get(ROWS.get(0)); // null when not picked: no ratios

            for (Live l : live.values()) {
                double median = median(l.secs);
                List<Double> ratios = new ArrayList<>();
                for (int i = 0; floatRow != null && i < l.secs.size(); i++) {
                    ratios.add(floatRow.secs.get(i) / l.secs.get(i));
                }
                out.append(String.format(Locale.ROOT, "%-18s %-38s %8.1fs %9.1fs %8.3fs %7.3fs %8.0f %7.2fx%n",
                        l.row.name(), l.row.spec() == null ? "-" : l.row.spec().describe().replace("block_size", "bs")
                                .replace("symmetric=true ", "").replace("compute=", "").replace("kernel=", "")
                                + (l.row.lmHead() ? " +lm_head" : "")
                                + (l.row.spec().kernel() == NBITS && !l.row.prepackQuantized() ? " unpacked" : ""),
                        l.quantizeSeconds, l.setupSeconds, median, l.secs.stream().mapToDouble(d -> d).min()
                                .orElseThrow(), BATCH * SEQ / median, ratios.isEmpty() ? Double.NaN : median(ratios)));
            }
            System.out.print(out);
            Path dir = Path.of("target", "benchmarks");
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("quantized-train-step-" + name + ".txt"), out);
        } finally {
            live.values().forEach(Live::close);
        }
        Path profiles = profileDirectory();
        for (Row r : rows) {
            // Sessions write their profile when they close; each row's engine has its own folder.
            try (var files = profiles == null ? null : Files.list(profiles.resolve(r.name()))) {
                if (files != null) {
                    for (Path f : files.filter(f -> f.toString().endsWith(".json")).sorted().toList()) {
                        System.out.printf(Locale.ROOT, "ONNX Runtime profile of %s (%s)%n%s", r.name(), f,
                                OrtProfileSummary.read(f).format(25));
                    }
                }
            }
        }
    }

    /** {@code -Dpet.bench.profile=DIR}: every row's sessions write ONNX Runtime's profile to DIR/ROW (slows steps). */
    private static Path profileDirectory() {
        String dir = System.getProperty("pet.bench.profile", "");
        return dir.isEmpty() ? null : Path.of(dir).toAbsolutePath();
    }

    private static Live open(String name, Row r) {
        PretrainedModel base = new Gpt2Provider().load(new ModelRequest(name, Map.of(), 1));
        long q0 = System.nanoTime();
        if (r.spec() != null) {
            base = new Quantization(r.spec(), null, r.lmHead()).apply(base, true).model();
        }
        double quantizeSeconds = (System.nanoTime() - q0) / 1e9;
        LoraAdapter lora = new LoraAdapter();
        PetModel pet = lora.getPetModel(base, lora.parseConfig(Map.of("r", 8, "lora_alpha", 16)));
        Path profiles = profileDirectory();
        OrtEngine engine = new OrtEngine(EngineOptions.defaults().withPrepackQuantized(r.prepackQuantized())
                .withProfileDirectory(profiles == null ? null : profiles.resolve(r.name())));
        var a = base.anatomy();
        long s0 = System.nanoTime();
        GraphTrainStep step = new GraphTrainStep(engine, pet.model(), new GraphTrainStep.ModelIo(a.inputIds(),
                a.attentionMask(), a.logits()), pet.trainables(), OptimizerSpec.adamW(), 1, (t, d) -> { });
        return new Live(r, engine, step, quantizeSeconds, (System.nanoTime() - s0) / 1e9, base.vocabSize());
    }

    private static double median(List<Double> v) {
        double[] s = v.stream().mapToDouble(d -> d).sorted().toArray();
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static Batch batch(long vocab) {
        Random r = new Random(1);
        long[] tokens = new long[BATCH * (SEQ + 1)];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = r.nextInt((int) vocab);
        }
        float[] mask = new float[BATCH * SEQ];
        Arrays.fill(mask, 1);
        return new Batch(BATCH, SEQ, tokens, mask, DataPosition.START);
    }
}
